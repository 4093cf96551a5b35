// Who is signed in, and what their role may do: the console shows only that (the API refuses
// the rest anyway, with a 403).
import { createContext, useContext } from "react";

export interface Me {
  user_id: string;
  email: string | null;
  role: "admin" | "marketer" | "sales" | "viewer" | null;
  /** null: a user no group names, who may do nothing. */
  operations: string[];
}

export const MeContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(MeContext);
  if (me === null) throw new Error("useMe outside a signed-in page");
  return me;
}

export function useMay(): (operation: string) => boolean {
  const me = useMe();
  return (operation) => me.operations.includes(operation);
}
