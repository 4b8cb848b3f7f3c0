//! The HTTP layer every connector uses: base URLs, auth, timeouts, bounded concurrency, retries that
//! honour rate limits, pagination helpers, a request counter, and errors that name the method, URL
//! and status but never a credential.

mod client;
pub mod oauth;
pub mod paginate;
pub mod retry;
pub mod token;
pub mod wire;

pub use client::{
    requests_by_api, Auth, CreateError, Created, HttpClient, HttpError, HttpSettings, Reply, Sent,
};
pub use retry::{Asked, Classifier, Retry, RetryPolicy};
pub use token::TokenSource;

#[cfg(test)]
mod tests;
