"""Fixed vocabularies and shapes of the synthetic data (names, time zones, phrases, weights)."""

from __future__ import annotations

RESELLER_NAMES = (
    "Voicebridge Partners",
    "CallStack Resellers",
    "Northline Telecom",
    "Helix Channel Group",
    "BlueRiver Communications",
    "Summit Voice Solutions",
)

ORG_NAMES = (
    "Acme Dental Group",
    "Northwind Insurance",
    "Brightside Veterinary",
    "Harbor City Plumbing",
    "Lumen Health Clinics",
    "Redwood Property Management",
    "Sunrise Auto Repair",
    "Pinecrest Law Office",
    "Metro Fitness Studios",
    "Cobalt Internet Services",
    "Golden Spoon Restaurants",
    "Evergreen Home Care",
    "Atlas Moving Company",
    "Orchid Spa & Wellness",
    "Keystone Credit Union",
    "Nimbus Software Support",
)

# Organization i gets TIMEZONES[i % len]: half-hour, 45-minute and null (UTC) zones come early
# so that even a dozen organizations cover them.
TIMEZONES: tuple[str | None, ...] = (
    "America/New_York",
    "Asia/Kolkata",
    "Europe/London",
    "Asia/Kathmandu",
    "America/Los_Angeles",
    "Australia/Eucla",
    None,
    "America/Chicago",
    "America/St_Johns",
    "Europe/Berlin",
    "Australia/Adelaide",
    "Pacific/Marquesas",
    "Asia/Tokyo",
    "America/Sao_Paulo",
    "America/Denver",
    "Asia/Singapore",
)

AGENT_FIRST_NAMES = (
    "Ava", "Max", "Nora", "Leo", "Iris", "Theo", "Maya", "Jonah", "Zara", "Felix",
    "Luna", "Owen", "Ruby", "Ezra", "Cleo", "Hugo", "Stella", "Milo", "Vera", "Otis",
)
AGENT_ROLES = (
    "Front Desk", "Billing", "Scheduling", "Support", "Sales", "After Hours", "Intake", "Returns",
)
RENAME_SUFFIXES = ("v2", "New", "Plus", "Pro")

# Statuses of agents: (status, weight); "suspended" is not a known status (dirt).
AGENT_STATUSES = (("active", 0.86), ("inactive", 0.06), ("cancelled", 0.04), ("pending", 0.04))
UNKNOWN_AGENT_STATUS = "suspended"

# Canonical escalation reasons (lower case) and their weights.
ESCALATION_REASONS = (
    ("billing dispute", 14.0),
    ("technical issue requiring specialist", 12.0),
    ("customer requested human", 18.0),
    ("refund request", 8.0),
    ("account access problem", 7.0),
    ("complaint about service", 6.0),
    ("cancellation request", 6.0),
    ("complex scheduling request", 5.0),
    ("language barrier", 3.0),
    ("payment failure", 4.0),
    ("insurance verification", 4.0),
    ("medical question", 3.0),
    ("emergency situation", 1.5),
    ("legal question", 1.5),
)

UNMAPPED_OUTCOMES = ("callback-scheduled", "dropped-by-carrier", "wrong-number", "spam")
UNKNOWN_EVENT_TYPES = ("heartbeat", "dtmf", "asr_partial", "Vad", "summary")
TOOL_NAMES = (
    "lookup_order", "check_availability", "book_appointment", "update_account",
    "send_sms", "lookup_customer", "create_ticket", "cancel_booking",
)
BAD_TOOL_STATUSES = ("timeout", "pending", "cancelled")

# Relative call volume by ISO weekday (Monday first) for the two organization profiles.
WEEKDAY_WEIGHTS = {
    "business": (1.12, 1.08, 1.0, 1.0, 0.92, 0.38, 0.22),
    "allday": (1.0, 1.0, 1.0, 1.0, 1.0, 0.86, 0.8),
}
# Relative call volume by local hour of day.
HOUR_WEIGHTS = {
    "business": (
        0.15, 0.08, 0.06, 0.06, 0.08, 0.2, 0.6, 1.6, 4.2, 7.0, 8.8, 9.0,
        6.4, 7.2, 8.6, 8.2, 6.6, 4.2, 2.4, 1.7, 1.2, 0.8, 0.5, 0.3,
    ),
    "allday": (
        1.5, 1.2, 1.0, 0.9, 0.9, 1.1, 1.8, 2.8, 3.8, 4.2, 4.4, 4.4,
        4.2, 4.2, 4.3, 4.2, 4.0, 3.8, 3.5, 3.2, 2.9, 2.6, 2.2, 1.8,
    ),
}
