#!/usr/bin/env bash
# Brings the production profile up on this machine (see profile.sh): install what is missing, start every part.
exec bash "$(dirname "$0")/profile.sh" up "$@"
