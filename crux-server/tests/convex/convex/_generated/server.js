// What `npx convex codegen` generates for a JavaScript project: Convex's builders under their
// usual names. convex-test also finds the functions' root directory by this `_generated` one.
export {
  actionGeneric as action,
  internalActionGeneric as internalAction,
  queryGeneric as query,
  internalQueryGeneric as internalQuery,
  mutationGeneric as mutation,
  internalMutationGeneric as internalMutation,
  httpActionGeneric as httpAction,
} from "convex/server";
