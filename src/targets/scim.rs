//! `type: scim`: any SCIM 2.0 service provider, through the shared client in [`crate::scim`].

use async_trait::async_trait;

use super::{ActionError, Target, TargetError};
use crate::model::{People, Snapshot};
use crate::plan::Action;
use crate::scim::ScimDirectory;

/// `type: scim`: any SCIM 2.0 service provider.
#[derive(Debug)]
pub struct ScimTarget {
    dir: ScimDirectory,
}

impl ScimTarget {
    #[must_use]
    pub fn new(dir: ScimDirectory) -> ScimTarget {
        ScimTarget { dir }
    }
}

#[async_trait]
impl Target for ScimTarget {
    fn name(&self) -> String {
        format!("scim:{}", self.dir.http.url(""))
    }

    // Today's behaviour kept: a generic SCIM target is held to Atlassian's reserved names too.
    fn reserved_group(&self, name: &str) -> Option<&'static str> {
        super::atlassian::reserved_group(name)
    }

    fn concurrency(&self) -> usize {
        self.dir.http.concurrency()
    }

    fn requests_for(&self, action: &Action) -> u64 {
        ScimDirectory::requests_for(action)
    }

    fn requests(&self) -> u64 {
        self.dir.http.requests()
    }

    async fn snapshot(&mut self) -> Result<Snapshot, TargetError> {
        Ok(self.dir.snapshot().await?)
    }

    async fn snapshot_people(&mut self, people: &People) -> Result<Snapshot, TargetError> {
        Ok(self.dir.snapshot_people(people).await?)
    }

    async fn apply(&self, action: &Action) -> Result<(), ActionError> {
        self.dir.apply(action).await
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        Ok(())
    }
}
