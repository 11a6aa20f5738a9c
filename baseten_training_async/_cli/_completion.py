"""``completion SHELL``: completion scripts for bash, zsh and fish, made from the parser.

The scripts complete command groups, commands and each command's options; they
are generated from the argument parser, so they never fall out of date.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Final

__all__ = ["completion_script"]

PROG: Final = "baseten-training"
_FUNCTION: Final = "_baseten_training"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--")})


def _valued_options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        {s for a in parser._actions if a.option_strings and a.nargs != 0 for s in a.option_strings}
    )


def _tree(
    parser: argparse.ArgumentParser,
) -> tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]]:
    """Commands per group (``""`` for the top level) and words per ``(group, command)``."""
    groups: dict[str, list[str]] = {"": sorted(_subcommands(parser))}
    words: dict[tuple[str, str], list[str]] = {("", ""): _options(parser)}
    for group, group_parser in _subcommands(parser).items():
        commands = _subcommands(group_parser)
        if commands:
            groups[group] = sorted(commands)
            for command, command_parser in commands.items():
                words[(group, command)] = _options(command_parser)
        else:
            choices = [
                str(c)
                for a in group_parser._actions
                if not a.option_strings and a.choices
                for c in a.choices
            ]
            words[(group, "")] = choices + _options(group_parser)
    return groups, words


def _bash(parser: argparse.ArgumentParser) -> str:
    groups, words = _tree(parser)
    valued = " ".join(_valued_options(parser))
    cases = []
    for (group, command), options in sorted(words.items()):
        if group and not command and group in groups:
            continue
        cases.append(f'    "{group} {command}") opts={shlex.quote(" ".join(options))} ;;')
    for group, commands in sorted(groups.items()):
        if group:
            cases.append(f'    "{group} ") opts={shlex.quote(" ".join(commands))} ;;')
    top = shlex.quote(" ".join(groups[""] + words[("", "")]))
    body = "\n".join(cases)
    return f"""# bash completion for {PROG}: eval "$({PROG} completion bash)"
{_FUNCTION}() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" group="" command="" skip="" i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    if [[ -n $skip ]]; then skip=""; continue; fi
    case " {valued} " in *" $word "*) skip=1; continue ;; esac
    case "$word" in
      -*) ;;
      *) if [[ -z $group ]]; then group="$word"; elif [[ -z $command ]]; then command="$word"; fi ;;
    esac
  done
  local opts=""
  if [[ -z $group ]]; then
    opts={top}
  else
    case "$group $command" in
{body}
    esac
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F {_FUNCTION} {PROG}
"""


def _zsh(parser: argparse.ArgumentParser) -> str:
    return (
        f"#compdef {PROG}\n"
        f'# zsh completion for {PROG}: eval "$({PROG} completion zsh)"\n'
        "autoload -U +X bashcompinit && bashcompinit\n" + _bash(parser).split("\n", 1)[1]
    )


def _fish(parser: argparse.ArgumentParser) -> str:
    groups, words = _tree(parser)
    lines = [
        f"# fish completion for {PROG}: {PROG} completion fish | source",
        f"complete -c {PROG} -f",
    ]
    top = _subcommands(parser)
    for group in groups[""]:
        help_text = (top[group].description or "").replace("'", "")
        lines.append(
            f"complete -c {PROG} -n __fish_use_subcommand -a {group} -d '{help_text[:60]}'"
        )
    for option in words[("", "")]:
        lines.append(f"complete -c {PROG} -n __fish_use_subcommand -l {option[2:]}")
    for group, commands in sorted(groups.items()):
        if not group:
            continue
        listed = " ".join(commands)
        lines.append(
            f"complete -c {PROG} -n '__fish_seen_subcommand_from {group}; and not "
            f"__fish_seen_subcommand_from {listed}' -a '{listed}'"
        )
    for (group, command), options in sorted(words.items()):
        if not group:
            continue
        condition = f"__fish_seen_subcommand_from {group}"
        if command:
            condition += f"; and __fish_seen_subcommand_from {command}"
        for word in options:
            if word.startswith("--"):
                lines.append(f"complete -c {PROG} -n '{condition}' -l {word[2:]}")
            else:
                lines.append(f"complete -c {PROG} -n '{condition}' -a {word}")
    return "\n".join(lines) + "\n"


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell``.

    Args:
        shell: ``bash``, ``zsh`` or ``fish``.
        parser: The CLI's parser.

    Returns:
        The script.
    """
    makers = {"bash": _bash, "zsh": _zsh, "fish": _fish}
    return makers[shell](parser).rstrip("\n")
