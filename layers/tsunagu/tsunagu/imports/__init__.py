"""Lead lists as Japanese teams have them (seed 001: the attendee sheet, the card scans, last
month's seminar list): read whatever encoding Excel saved, map the columns from their Japanese
or English headers, clean the values the way the capture path does, and plan the import row by
row before anything is written - create, update (which fields change, which a higher-ranked
source keeps), unchanged or rejected with the reason."""
