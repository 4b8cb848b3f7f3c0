//! The HTTP layer every connector uses: base URLs, auth, timeouts, bounded concurrency, retries that
//! honour rate limits, pagination helpers, a request counter, and errors that name the method, URL
//! and status but never a credential.

mod client;
pub mod oauth;
pub mod paginate;
mod retry;
pub mod token;

pub use client::{requests_by_api, Auth, HttpClient, HttpError, HttpSettings, Reply, Sent};
pub use retry::RetryPolicy;
pub use token::TokenSource;
