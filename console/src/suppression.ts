// A suppression as the console shows one: its reasons, and whether this user may lift it - the
// suppression list and the lead's page ask the same question, so they ask it here.

export const REASONS = ["hard_bounce", "soft_bounce_limit", "complaint", "manual"] as const;

export type SuppressionReason = (typeof REASONS)[number];

/** A suppression as the API answers it on a lead and on the suppression list. */
export interface SuppressionView {
  reason: SuppressionReason;
  at: string;
  /** The roles that may lift it, by the API's own rule (marketers a manual one, admins a
   * bounce too, no one a complaint): the console keeps no copy of that rule. */
  liftable_by: string[];
}

/** Whether this user's role may lift this suppression: what the API says of it. */
export function mayLift(suppression: SuppressionView, role: string | null): boolean {
  return role !== null && suppression.liftable_by.includes(role);
}
