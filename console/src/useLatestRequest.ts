// Only the answer to the last request asked is shown. Answers do not come back in the order
// they were asked: a list read before a filter was typed can answer after the filtered one, and
// would put back what she filtered away. Each `begin()` starts a request and gives its check,
// true until a later `begin()` of the same hook; an answer whose check is false is dropped (its
// failure too: the later request answers for the screen). A `begin()` whose check is never read
// just drops whatever is on its way ("New segment" pressed while one opens).
import { useCallback, useRef } from "react";

export function useLatestRequest(): () => () => boolean {
  const last = useRef(0);
  return useCallback(() => {
    const mine = ++last.current;
    return () => mine === last.current;
  }, []);
}

/** What `asked` answers, when `isLatest` (a `begin()`'s check, taken before `asked` was sent)
 * still holds then: `{ answer }`; null when a later request was begun meanwhile - its failure
 * is dropped too, the later request answers for the screen. The latest request's failure is
 * thrown, for the screen to say. */
export async function latestAnswer<T>(isLatest: () => boolean, asked: Promise<T>): Promise<{ answer: T } | null> {
  try {
    const answer = await asked;
    return isLatest() ? { answer } : null;
  } catch (error) {
    if (isLatest()) throw error;
    return null;
  }
}
