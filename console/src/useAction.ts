// A change a person asks for from a screen: run it, say it was done (or what went wrong), then
// reload what the screen shows. Answers whether it was done (a form clears itself only then).
import { useCallback, useState } from "react";

import { describeError } from "./api";

export function useAction(reload?: () => Promise<unknown> | void) {
  const [message, setMessage] = useState<string | null>(null);
  const run = useCallback(
    async (what: () => Promise<unknown>, done: string): Promise<boolean> => {
      setMessage(null);
      try {
        await what();
      } catch (error) {
        setMessage(describeError(error));
        return false;
      }
      setMessage(done);
      try {
        await reload?.();
      } catch (error) {
        setMessage(describeError(error));
      }
      return true;
    },
    [reload],
  );
  return { message, setMessage, run };
}
