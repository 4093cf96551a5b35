// A change a person asks for from a screen: run it, say it was done (or what went wrong), then
// reload what the screen shows. Answers whether it was done (a form clears itself only then).
// What it says may be read from the answer (a resume the emergency stop still holds).
import { useCallback, useState } from "react";

import { describeError } from "./api";

export function useAction(reload?: () => Promise<unknown> | void) {
  const [message, setMessage] = useState<string | null>(null);
  const run = useCallback(
    async <T,>(what: () => Promise<T>, done: string | ((answer: T) => string)): Promise<boolean> => {
      setMessage(null);
      let answer: T;
      try {
        answer = await what();
      } catch (error) {
        setMessage(describeError(error));
        return false;
      }
      setMessage(typeof done === "function" ? done(answer) : done);
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
