"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``.

Written by hand next to ``api.py``: ``tests/test_web_api.py`` checks that every
route of the API is described here, so the two cannot drift apart silently.
"""

from __future__ import annotations

from typing import Any

from mailgate import __version__
from mailgate.config import PRIORITIES, STATUSES
from mailgate.search import SORTS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
NUMBER_PARAMETER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
    "description": "the ticket number (without the subject tag)",
}
UNAUTHORIZED = _error("no token, or a token that is unknown, revoked or of a removed agent")
NOT_FOUND = _error("no such ticket, or one this agent may not see (the same answer)")
BAD_REQUEST = _error("the body is not a JSON object, or a field is unknown or of the wrong type")
UNPROCESSABLE = _error("a value the gateway refuses (unknown team, empty text, …)")

_LIST_PARAMETERS: list[tuple[str, str]] = [
    ("status", f"comma list of {', '.join(STATUSES)}"),
    ("priority", f"comma list of {', '.join(PRIORITIES)}"),
    ("team", "comma list of team keys; 'none' = no team"),
    ("assignee", "comma list of agent keys; 'me' = the token's agent; 'none' = nobody"),
    ("requester", "an address, or a domain (every address at it)"),
    ("mailbox", "a mailbox name"),
    ("category", "a category"),
    ("tag", "a tag"),
    ("created_after", "a date (YYYY-MM-DD) or time, in the gateway's time zone"),
    ("created_before", "a date or time"),
    ("updated_after", "a date or time"),
    ("updated_before", "a date or time"),
    ("due_before", "a date or time: an SLA clock runs out before it"),
    ("q", "full-text search: words, \"phrases\", prefix*, #NUMBER, a Message-ID"),
    ("sort", f"one of {', '.join(SORTS)}; -FIELD for descending (default: rank with q, else"
     " -updated)"),
]  # fmt: skip

TICKET_SUMMARY = {
    "type": "object",
    "properties": {
        "number": {"type": "integer"},
        "tag": STRING,
        "subject": STRING,
        "status": {"enum": list(STATUSES)},
        "priority": {"enum": list(PRIORITIES)},
        "requester": STRING,
        "assignee": NULLABLE_STRING,
        "team": NULLABLE_STRING,
        "mailbox": STRING,
        "category": STRING,
        "tags": {"type": "array", "items": STRING},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    "required": ["number", "tag", "subject", "status", "priority"],
}

MESSAGE = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "direction": {"enum": ["in", "out"]},
        "kind": STRING,
        "from": NULLABLE_STRING,
        "to": {"type": "array", "items": STRING},
        "cc": {"type": "array", "items": STRING},
        "subject": STRING,
        "message_id": NULLABLE_STRING,
        "date": {"type": ["string", "null"], "format": "date-time"},
        "text": STRING,
        "attachments": {"type": "array", "items": {"type": "object"}},
    },
}

TICKET = {
    "type": "object",
    "description": "what `mailgate tickets show --json` prints",
    "properties": {
        **TICKET_SUMMARY["properties"],  # type: ignore[dict-item]
        "collaborators": {"type": "array", "items": STRING},
        "links": {"type": "array", "items": {"type": "object"}},
        "messages": {"type": "array", "items": _ref("Message")},
        "events": {"type": "array", "items": {"type": "object"}},
        "sla": {},
        "csat": {},
        "working_time": {},
    },
}

TEXT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"text": STRING},
                "required": ["text"],
                "additionalProperties": False,
            }
        }
    },
}

DONE = _json(
    {
        "type": "object",
        "properties": {"number": {"type": "integer"}, "tag": STRING, "result": STRING},
    },
    "done",
)
TEXT_RESPONSES = {
    "200": DONE,
    "400": BAD_REQUEST,
    "401": UNAUTHORIZED,
    "404": NOT_FOUND,
    "422": UNPROCESSABLE,
}


def _paths() -> dict[str, Any]:
    list_parameters = [
        {"name": name, "in": "query", "required": False, "schema": STRING, "description": text}
        for name, text in _LIST_PARAMETERS
    ] + [
        {"name": "breached", "in": "query", "schema": {"type": "boolean"},
         "description": "only tickets with a breached SLA clock"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                    "maximum": 500, "default": 50}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                     "default": 0}},
    ]  # fmt: skip
    return {
        "/api/v1/tickets": {
            "get": {
                "summary": "Find tickets (the filters of `tickets list`, full text with q)",
                "operationId": "listTickets",
                "parameters": list_parameters,
                "responses": {
                    "200": _json(_ref("TicketList"), "one page, and how many match in all"),
                    "400": _error("an unknown parameter or value"),
                    "401": UNAUTHORIZED,
                },
            },
            "post": {
                "summary": "Open a ticket for a customer (as `tickets create --as AGENT`)",
                "operationId": "createTicket",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewTicket")}},
                },
                "responses": {
                    "201": {
                        **_json(_ref("Created"), "created; the customer's mail is queued"),
                        "headers": {"Location": {"schema": STRING}},
                    },
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "422": UNPROCESSABLE,
                },
            },
        },
        "/api/v1/tickets/{number}": {
            "parameters": [NUMBER_PARAMETER],
            "get": {
                "summary": "One ticket with its thread and audit trail",
                "operationId": "getTicket",
                "responses": {
                    "200": _json(_ref("Ticket"), "the ticket"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
            "patch": {
                "summary": "Change team, assignee, priority or status (as the mail commands)",
                "operationId": "updateTicket",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("TicketChange")}},
                },
                "responses": {
                    "200": _json(_ref("Changed"), "what changed, and the ticket now"),
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "422": UNPROCESSABLE,
                },
            },
        },
        "/api/v1/tickets/{number}/reply": {
            "parameters": [NUMBER_PARAMETER],
            "post": {
                "summary": "Answer the customer as the token's agent",
                "operationId": "replyTicket",
                "requestBody": TEXT_BODY,
                "responses": TEXT_RESPONSES,
            },
        },
        "/api/v1/tickets/{number}/note": {
            "parameters": [NUMBER_PARAMETER],
            "post": {
                "summary": "Add an internal note (never sent to the customer)",
                "operationId": "noteTicket",
                "requestBody": TEXT_BODY,
                "responses": TEXT_RESPONSES,
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": {"description": "the OpenAPI document"}},
            },
        },
    }


def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {
            "token": {
                "type": "http",
                "scheme": "bearer",
                "description": "a token from `mailgate agents token KEY`",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string", "description": "one sentence"}},
                "required": ["error"],
            },
            "TicketSummary": TICKET_SUMMARY,
            "Ticket": TICKET,
            "Message": MESSAGE,
            "TicketList": {
                "type": "object",
                "properties": {
                    "tickets": {"type": "array", "items": _ref("TicketSummary")},
                    "total": {"type": "integer", "description": "how many match in all"},
                    "exact": {
                        "type": "boolean",
                        "description": "false: total is 'at least' — more than 10,000 tickets"
                        " match, or more messages matched q than were searched",
                    },
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                },
                "required": ["tickets", "total", "exact"],
            },
            "NewTicket": {
                "type": "object",
                "properties": {
                    "requester": {"type": "string", "format": "email"},
                    "subject": STRING,
                    "text": STRING,
                    "mailbox": STRING,
                    "priority": {"enum": list(PRIORITIES)},
                    "team": STRING,
                },
                "required": ["requester", "subject", "text"],
                "additionalProperties": False,
            },
            "Created": {
                "type": "object",
                "properties": {"number": {"type": "integer"}, "tag": STRING, "url": STRING},
            },
            "TicketChange": {
                "type": "object",
                "properties": {
                    "team": STRING,
                    "assignee": {
                        "type": ["string", "null"],
                        "description": "an agent key; null or 'none' unassigns",
                    },
                    "priority": {"enum": list(PRIORITIES)},
                    "status": {"enum": list(STATUSES)},
                },
                "additionalProperties": False,
                "minProperties": 1,
            },
            "Changed": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "changed": {"type": "object", "additionalProperties": {"type": "boolean"}},
                    "ticket": _ref("TicketSummary"),
                },
            },
        },
    }


def document(root_path: str = "") -> dict[str, Any]:
    """The whole document; ``root_path``: where the desk is served (behind a proxy)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailgate JSON API",
            "version": __version__,
            "description": "Tickets of the mailgate web desk. Every call but this document"
            " needs `Authorization: Bearer <token>` (`mailgate agents token KEY`); a ticket"
            " the agent may not see answers 404, as one that does not exist.",
        },
        "servers": [{"url": root_path or "/"}],
        "security": [{"token": []}],
        "paths": _paths(),
        "components": _components(),
    }
