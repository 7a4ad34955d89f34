"""``grader autograder --exercise ID --out autograder.zip``: a Gradescope autograder for one exercise.

The zip carries the secret local grading uses, so Gradescope's hidden checks draw the same data as
``grader grade``: ``--secret-file``, else ``$GRADER_SECRET``, else the one grader.toml names, else the
one next to the gradebook. Only when there is none yet does the zip get a new one, and it says so.
"""

from __future__ import annotations

import argparse
import pathlib
import secrets as token
import sys

from grader.errors import EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("autograder", help="build a Gradescope autograder zip (setup.sh + run_autograder)",
                       description="Package this grader, one exercise and the instructor secret into a zip that "
                                   "Gradescope's autograder accepts. Its setup.sh installs the grader with the "
                                   "image's python3 (3.10 or later: Gradescope's default Ubuntu 22.04 image will "
                                   "do); its hidden checks use the same secret as local grading.")
    p.add_argument("--exercise", required=True, help="the exercise the autograder grades (see `grader exercises`)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("autograder.zip"), help="where to write the zip")
    p.add_argument("--secret-file", type=pathlib.Path,
                   help="the instructor secret (default: $GRADER_SECRET, else grading.secret_file in grader.toml, "
                        "else <gradebook>.secret; a new one only when none of them exists)")
    p.add_argument("--gradebook", type=pathlib.Path,
                   help="the gradebook whose <gradebook>.secret to use (default: grading.gradebook in grader.toml, "
                        "else gradebook.sqlite)")
    p.set_defaults(run=run)


def instructor_secret(args: argparse.Namespace, config) -> tuple[bytes, str]:
    """The secret ``grader grade`` would use, and where it lives ("" for a new one); never writes a file."""
    from grader.grading.secrets import ENV_VAR, load_secret

    if args.secret_file:
        return load_secret(args.secret_file), str(args.secret_file)
    secret = load_secret()
    if secret:
        return secret, f"${ENV_VAR}"
    gradebook = args.gradebook or (config.gradebook if config else None) or pathlib.Path("gradebook.sqlite")
    path = (config.secret_file if config else None) or gradebook.with_name(gradebook.name + ".secret")
    if path.is_file():
        return load_secret(path), str(path)
    return token.token_hex(32).encode(), ""


def run(args: argparse.Namespace) -> int:
    from grader.grading.secrets import fingerprint
    from grader.specs.config import discover
    from grader.store.autograder import build_zip

    secret, source = instructor_secret(args, discover(getattr(args, "config", None)))
    path = build_zip(args.exercise, args.out, secret)
    print(f"wrote {path.resolve()}: upload it as the autograder of a Gradescope programming assignment")
    if source:
        print(f"hidden checks use the secret from {source} (fingerprint {fingerprint(secret)}), as local grading "
              "does")
    else:
        print("note: no instructor secret yet (--secret-file, $GRADER_SECRET, grader.toml, <gradebook>.secret): "
              f"the zip has a new one (fingerprint {fingerprint(secret)}), so Gradescope's hidden checks draw other "
              "data than local grading would; pass --secret-file to share one", file=sys.stderr)
    return EXIT_OK
