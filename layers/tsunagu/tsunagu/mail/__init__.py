"""Mail: templates, rendering with tracked links, consent at send time, sending through SES."""
