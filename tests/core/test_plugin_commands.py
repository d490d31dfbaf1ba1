"""Plugins add commands to `dlbench` through the ``dlbench_commands`` hook, as the speech plugin
adds ``dlbench denoise``; clashes are reported like duplicate experiments."""

import json
import os
import re

from dlbench.testing import fake_distribution, run_cli

HELLO = '''
import click

from dlbench import hookimpl


@click.command("{name}")
@click.argument("who")
def greet(who):
    """Greet WHO ({plugin})."""
    from dlbench import UsageError

    if who == "nobody":
        raise UsageError("nobody to greet (fix: name someone)")
    click.echo("hello " + who + " from {plugin}")


@hookimpl
def dlbench_commands():
    return [greet]
'''


def plugin(site, module, name="hello", distribution=None):
    return fake_distribution(site, module, HELLO.format(name=name, plugin=module),
                             distribution=distribution)


def test_an_installed_plugin_adds_a_command_to_help_and_runs_it(tmp_path):
    site = plugin(tmp_path / "site", "greeter", distribution="greeter-dist")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "greeter"}
    help_text = run_cli(["--help"], env=env)
    assert help_text.returncode == 0
    assert re.search(r"^  hello +Greet WHO \(greeter\)\.$", help_text.stdout, re.MULTILINE)
    out = run_cli(["hello", "world"], env=env)
    assert out.returncode == 0 and out.stdout == "hello world from greeter\n"
    # Its errors follow the CLI contract like dlbench's own.
    refused = run_cli(["hello", "nobody"], env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: nobody to greet (fix: name someone)"
    (info,) = json.loads(run_cli(["plugins", "--json"], env=env).stdout)
    assert info["commands"] == ["hello"] and info["distribution"] == "greeter-dist"


def test_clashes_are_reported_and_neither_command_is_added(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dlbench.cli import main

    site = tmp_path / "site"
    plugin(site, "clash_a", distribution="clash-a")
    plugin(site, "clash_b", distribution="clash-b")
    plugin(site, "shadow", name="run", distribution="shadow-dist")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "clash_a,clash_b,shadow")

    out = CliRunner().invoke(main, ["hello", "world"])
    assert out.exit_code == 1
    line = out.stderr.strip().splitlines()[-1]
    assert line == ("error: command 'hello' is registered twice: by plugin 'clash_a' (clash-a"
                    " 1.0) and by plugin 'clash_b' (clash-b 1.0) (fix: uninstall one, or set"
                    " DLBENCH_DISABLE_PLUGINS)")

    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0 and "hello" not in listed.stdout
    # A plugin may not replace dlbench's own command: `run` is still the runner's.
    assert "Run experiment NAME and log it to MLflow." in listed.stdout
    assert "would replace dlbench's own command of that name" in listed.stderr
    run_help = CliRunner().invoke(main, ["run", "--help"])
    assert "--resume" in run_help.stdout and "Greet" not in run_help.stdout
