#!/usr/bin/env python3
"""Runs argv with a pseudo-terminal as its stdin, stdout and stderr, and copies what it prints to
our stdout: a test can see what a program shows a person at a terminal."""
import os
import pty
import sys

status = pty.spawn(sys.argv[1:])
sys.exit(os.waitstatus_to_exitcode(status))
