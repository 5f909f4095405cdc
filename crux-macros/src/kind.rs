//! Which attribute is being expanded: one of Convex's three function kinds, public or internal.

/// Convex's function kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Action,
    Query,
    Mutation,
}

/// The attribute being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub family: Family,
    pub internal: bool,
}

impl Kind {
    pub const ACTION: Self = Self::new(Family::Action, false);
    pub const INTERNAL_ACTION: Self = Self::new(Family::Action, true);
    pub const QUERY: Self = Self::new(Family::Query, false);
    pub const INTERNAL_QUERY: Self = Self::new(Family::Query, true);
    pub const MUTATION: Self = Self::new(Family::Mutation, false);
    pub const INTERNAL_MUTATION: Self = Self::new(Family::Mutation, true);

    const fn new(family: Family, internal: bool) -> Self {
        Self { family, internal }
    }

    /// The attribute's name as users write it: `internal_query`.
    pub fn attribute(self) -> &'static str {
        match (self.family, self.internal) {
            (Family::Action, false) => "action",
            (Family::Action, true) => "internal_action",
            (Family::Query, false) => "query",
            (Family::Query, true) => "internal_query",
            (Family::Mutation, false) => "mutation",
            (Family::Mutation, true) => "internal_mutation",
        }
    }

    /// Only actions open runs, so only they take run metadata and a final flush.
    pub fn opens_runs(self) -> bool {
        self.family == Family::Action
    }

    /// The `crux::__private` const holding this attribute's metadata defaults (kind,
    /// visibility, flush), the base of the generated `METADATA`.
    pub fn defaults(self) -> &'static str {
        match (self.family, self.internal) {
            (Family::Action, false) => "ACTION",
            (Family::Action, true) => "INTERNAL_ACTION",
            (Family::Query, false) => "QUERY",
            (Family::Query, true) => "INTERNAL_QUERY",
            (Family::Mutation, false) => "MUTATION",
            (Family::Mutation, true) => "INTERNAL_MUTATION",
        }
    }

    /// The `crux::__private` check fn for this kind's types (context, arguments, return
    /// type).
    pub fn types_check(self) -> &'static str {
        match self.family {
            Family::Action => "action_types",
            Family::Query => "query_types",
            Family::Mutation => "mutation_types",
        }
    }

    /// The context type a handler of this kind takes, for messages.
    pub fn context_type(self) -> &'static str {
        match self.family {
            Family::Action => "ActionCtx",
            Family::Query => "QueryCtx",
            Family::Mutation => "MutationCtx",
        }
    }
}
