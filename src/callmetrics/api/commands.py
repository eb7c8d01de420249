"""``callmetrics keys create|list|revoke`` (``api.md``, "Keys and what each may see")."""

from __future__ import annotations

import argparse
import sys

from callmetrics.api.keys import create_key, list_keys, revoke_key
from callmetrics.settings import Settings


def run_keys(args: argparse.Namespace) -> int:
    path = Settings.from_env().keys
    if args.keys_command == "create":
        if args.platform:
            scope, scope_id = "platform", None
        elif args.org is not None:
            scope, scope_id = "organization", args.org
        else:
            scope, scope_id = "reseller", args.reseller
        record, token = create_key(path, scope, scope_id, args.name)  # type: ignore[arg-type]
        sys.stdout.write(token + "\n")  # the key, once, alone on its line
        print(f"created key {record.id} ({record.scope_label}) in {path}; the key above is "
              "shown only now: store it safely", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        keys = list_keys(path)
        rows = [("ID", "NAME", "SCOPE", "CREATED", "REVOKED")] + [
            (k.id, k.name or "-", k.scope_label, k.created, k.revoked or "-") for k in keys
        ]
        widths = [max(len(row[n]) for row in rows) for n in range(5)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                  .rstrip())
        if not keys:
            print(f"(no keys in {path})", file=sys.stderr)
        return 0
    record = revoke_key(path, args.key_id)
    print(f"key {record.id} ({record.scope_label}) is revoked since {record.revoked}: it is "
          "refused from the next request on", file=sys.stderr)
    return 0
