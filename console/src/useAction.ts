// A change a person asks for from a screen: run it, say it was done (or what went wrong), then
// reload what the screen shows.
import { useCallback, useState } from "react";

import { describeError } from "./api";

export function useAction(reload?: () => Promise<unknown> | void) {
  const [message, setMessage] = useState<string | null>(null);
  const run = useCallback(
    async (what: () => Promise<unknown>, done: string) => {
      setMessage(null);
      try {
        await what();
        setMessage(done);
        await reload?.();
      } catch (error) {
        setMessage(describeError(error));
      }
    },
    [reload],
  );
  return { message, setMessage, run };
}
