#!/usr/bin/env bash
# Install keras-tasks with its test dependencies and run the whole test suite.
# Datasets are read from $KERAS_TASKS_DATA (default: ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

export KERAS_TASKS_DATA="${KERAS_TASKS_DATA:-../shared/data}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# The demo page's browser test needs Debian's Chromium and its WebDriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

python -m pip install -q --disable-pip-version-check -e ".[test]"
exec python -m pytest -q "$@"
