"""What each counted metric means, in words: the README and the API document repeat these, a
static test checks they do, and ``tsunagu.reports.counting`` is the code that follows them.

A day is a calendar day in the team's time zone (``TSUNAGU_DEFAULT_TIME_ZONE``, Asia/Tokyo by
default), of the instant the event occurred. "Unique" is per mail: one mail is one send of one
template version to one lead, so a lead who gets the same mail again (a second entry into a
journey) can count twice, and a lead who opens one mail five times counts once.
"""

from __future__ import annotations

DAYS_AND_UNIQUES = (
    "A day is a calendar day in the team's time zone (the DefaultTimeZone parameter,"
    " Asia/Tokyo unless set otherwise) of the instant the event occurred. Unique is per mail:"
    " one mail is one send of one template version to one lead, so a lead who opens a mail five"
    " times counts once, and a lead who gets the mail again (entering the journey a second time)"
    " can count again. People's and machines' activity (scanners, privacy proxies, judged when it"
    " arrives) are counted apart and never mixed."
)

METRICS: dict[str, str] = {
    "sent": "mails handed to SES (mail_sent), by the day they were sent",
    "delivered": "SES delivery notifications received (only where SES feedback is set up)",
    "bounced_hard": "permanent bounces (the address is suppressed at once)",
    "bounced_soft": "transient bounces, each one (the address is suppressed after a run of them)",
    "complained": "complaints (the lead is opted out of everything and suppressed)",
    "unsubscribed": (
        "mails from which the lead unsubscribed (one-click or the preferences page), once per mail"
        " however many topics it left"
    ),
    "opened_people": "opens judged a person's, every one",
    "opened_people_unique": (
        "mails with at least one open or click judged a person's (a click implies an open: the"
        " image may have been blocked)"
    ),
    "opened_machines": "opens judged automated (a scanner, a privacy proxy), every one",
    "opened_machines_unique": "mails with at least one open or click judged automated",
    "opened_machines:<reason>": (
        "automated opens with that judgement reason (an open with two reasons counts under both)"
    ),
    "clicked_people": (
        "clicks judged a person's, every one; counted once the burst window has passed, so a"
        " scanner's burst re-judged meanwhile counts as a machine's"
    ),
    "clicked_people_unique": "mails with at least one click judged a person's",
    "clicked_machines": "clicks judged automated, every one",
    "clicked_machines_unique": "mails with at least one click judged automated",
    "clicked_machines:<reason>": "automated clicks with that judgement reason",
    "decided": "leads that reached a branch, split or holdout node (journey reports)",
    "assigned": (
        "leads a split or holdout gave an arm, each lead once per arm however often it enters"
        " the journey (journey and experiment reports; an experiment's mail figures are of the"
        " mails sent to each arm's leads after it)"
    ),
    "outcome:<name>": "of those, the leads that went that way",
    "converted": (
        "leads that reached one of the journey's goals within its window (30 days unless set)"
        " after their first mail or decision in the journey, each lead once per journey; by the"
        " day of the goal, for each arm the lead had been given by then, and for the journey"
        " version unless the lead was in a holdout's control group (the journey left it alone:"
        " its conversion is its arm's, the experiment report's baseline)"
    ),
    "mql": (
        "leads that became MQLs (moved to MQL or past it from an earlier stage, as the funnel"
        " counts a stage reached) in the same window, counted the same way"
    ),
    "won": "deals: won deals, by the day they closed (the CRM's close date), as they now stand",
    "lost": "deals: lost deals, by the day they closed",
    "revenue_cents": "deals: won deals' amounts in hundredths of their currency, per currency",
    "reached:<stage>": (
        "funnel: leads created in the day that have reached the stage (lead, mql, sql,"
        " opportunity, customer) or a later one, whenever they reached it, each lead once"
    ),
    "days_to:<stage>:<n>": (
        "funnel: of those, the leads that took n whole days from the stage before (the"
        " report's median days)"
    ),
    "submitted": (
        "form submissions stored (form reports; per source: the form's utm_source, else the"
        " visitor's landing page's utm_source or referring site, else the post's referrer;"
        " the form's own site is never a source: direct)"
    ),
    "new_leads": "of those, the submissions that created a lead",
}

RATES: dict[str, str] = {
    "delivery_rate": "(sent - bounced_hard - bounced_soft) / sent",
    "bounce_rate": "(bounced_hard + bounced_soft) / sent",
    "open_rate": "opened_people_unique / (sent - bounced_hard - bounced_soft)",
    "click_rate": "clicked_people_unique / (sent - bounced_hard - bounced_soft)",
    "click_to_open_rate": "clicked_people_unique / opened_people_unique",
    "unsubscribe_rate": "unsubscribed / (sent - bounced_hard - bounced_soft)",
    "complaint_rate": "complained / (sent - bounced_hard - bounced_soft)",
    "machine_click_share": "clicked_machines / (clicked_people + clicked_machines)",
}
"""Rates are of people only (machines are shown beside them, never mixed in). The denominator
is the mails not bounced, as most mail tools compute "delivered": SES's delivery notifications
are optional, and a rate should not depend on whether they are set up. A rate whose denominator
is 0 or less is none, not 0, and a rate is never below 0 or above 1 (tsunagu.reports.figures.rate:
the days' counts can come from different days)."""

ATTRIBUTION = (
    "Attribution: a touch is a mail a person opened or clicked (machines' opens and clicks never"
    " count), at the instant of that person's first open or click. A won deal's touches are those"
    " of every lead the CRM associates with it, from the look-back window's days (90 unless set)"
    " before its close day to the end of that day. First touch gives the whole amount to the"
    " earliest touch, last touch to the latest, linear equal shares to each (a hundredth at a"
    " time to the earliest for what does not divide). A touch credits its mail and the journey"
    " that sent it. A won deal with no touch is unattributed. Amounts stay in their currency;"
    " ROI is the attributed revenue in US dollars (at the rates given) over the journey's AWS"
    " cost at list price for the look-back window and the report's days."
)
