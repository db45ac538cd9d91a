"""Commit messages (part of ``make lint``): a subject of at most 72 characters, then a blank line
before any body.

    tools/check_commits.py                      # every commit of HEAD's history made after CUTOFF
    tools/check_commits.py --message-file FILE  # one message (a ``commit-msg`` hook: ``$1``)

Only commits whose committer date is after ``CUTOFF`` are checked: the history before it was written
without this rule and is left as it is. The date, not a base commit, marks the start, so the check
gives the same answer on a fresh or shallow CI checkout that has no remote and may not hold any
particular commit. Outside a git checkout (a source archive) there is nothing to check.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

# committer date of the last commit written without the rule (main at 9b5710f)
CUTOFF = datetime.fromisoformat("2026-12-06T06:51:09+00:00")
MAX_SUBJECT = 72


def problems(message: str) -> list[str]:
    """What is wrong with one commit message (comment lines, as git strips them, ignored)."""
    lines = [line for line in message.rstrip("\n").split("\n") if not line.startswith("#")]
    subject = lines[0] if lines else ""
    found = []
    if not subject.strip():
        found.append("empty subject")
    if len(subject) > MAX_SUBJECT:
        found.append(f"subject of {len(subject)} characters (at most {MAX_SUBJECT})")
    if len(lines) > 1 and lines[1].strip():
        found.append("no blank line between the subject and the body")
    return found


def commits_after(cutoff: datetime) -> list[tuple[str, str]] | None:
    """(short hash, message) of every commit reachable from HEAD committed after ``cutoff``; None
    outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "log", "--format=%h%x00%ct%x00%B%x1e", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    found = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        short, stamp, message = record.lstrip("\n").split("\x00", 2)
        if int(stamp) > cutoff.timestamp():
            found.append((short, message))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--message-file", type=Path, help="check this one message instead of the history")
    args = parser.parse_args()
    if args.message_file:
        found = problems(args.message_file.read_text())
        for problem in found:
            print(f"commit message: {problem}", file=sys.stderr)
        return 1 if found else 0
    commits = commits_after(CUTOFF)
    if commits is None:
        print("check_commits: not a git checkout, nothing to check")
        return 0
    bad = [(short, message.split("\n", 1)[0], problem) for short, message in commits for problem in problems(message)]
    for short, subject, problem in bad:
        print(f"{short} {subject[:80]!r}: {problem}", file=sys.stderr)
    print(f"check_commits: {len(commits)} commits after {CUTOFF:%Y-%m-%d %H:%M} UTC, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
