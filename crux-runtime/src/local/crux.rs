//! `ctx.crux`: observed calls across function boundaries.

use std::sync::Arc;

use super::deployment::Deployment;
use super::store::Transaction;

/// `ctx.crux` in an action.
#[derive(Debug)]
pub struct ActionCrux {
    deployment: Deployment,
}

impl ActionCrux {
    pub(crate) fn new(deployment: Deployment) -> Self {
        Self { deployment }
    }
}

/// `ctx.crux` in a query.
#[derive(Debug)]
pub struct QueryCrux {
    deployment: Deployment,
    view: Arc<Transaction>,
}

impl QueryCrux {
    pub(crate) fn new(deployment: Deployment, view: Arc<Transaction>) -> Self {
        Self { deployment, view }
    }

    pub(crate) fn view(&self) -> &Arc<Transaction> {
        &self.view
    }
}

/// `ctx.crux` in a mutation.
#[derive(Debug)]
pub struct MutationCrux {
    deployment: Deployment,
    txn: Arc<Transaction>,
}

impl MutationCrux {
    pub(crate) fn new(deployment: Deployment, txn: Arc<Transaction>) -> Self {
        Self { deployment, txn }
    }
}
