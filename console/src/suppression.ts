// A suppression as the console shows one: its reasons, and who may lift it - the suppression
// list and the lead's page ask the same question, so they ask it here.

export const REASONS = ["hard_bounce", "soft_bounce_limit", "complaint", "manual"] as const;

export type SuppressionReason = (typeof REASONS)[number];

/** Whether this user's role may lift a suppression for this reason (the API's own rule:
 * marketers a manual one, admins a bounce too, no one a complaint). */
export function mayLift(reason: SuppressionReason, role: string | null, mayUnsuppress: boolean): boolean {
  if (!mayUnsuppress || reason === "complaint") return false;
  return reason === "manual" || role === "admin";
}
