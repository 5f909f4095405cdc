//! The contexts handlers receive.

/// The context of an action handler.
#[derive(Debug)]
pub struct ActionCtx {
    _private: (),
}

/// The context of a query handler: read-only.
#[derive(Debug)]
pub struct QueryCtx {
    _private: (),
}

/// The context of a mutation handler: reads and writes, all-or-nothing.
#[derive(Debug)]
pub struct MutationCtx {
    _private: (),
}
