// Who is signed in and what the server offers: loaded at start and after
// signing in or out, shared with every page through a context.
import { createContext, useContext } from "./lib.js";

/** {config, me, refresh()} for the page tree. */
export const Session = createContext(null);

/** The current session context. */
export function useSession() {
  return useContext(Session);
}

/** Whether the caller's role has `permission` (a snake_case name). */
export function can(me, permission) {
  return Boolean(me && me.permissions && me.permissions.includes(permission));
}

/** Whether the caller holds an account (or is the single user). */
export function accountHolder(me) {
  return Boolean(me && me.role && me.role !== "guest");
}
