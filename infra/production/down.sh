#!/usr/bin/env bash
# Stops every part of the production profile (see profile.sh); data stays in .data/production.
exec bash "$(dirname "$0")/profile.sh" down "$@"
