#!/usr/bin/env bash
# Run the whole test suite, installing what it needs the first time only.
#
#   bash scripts/run_tests.sh [pytest arguments]
#
# Runs the whole suite with TensorFlow, then the backend-agnostic tests (every layer and every task's model
# builder: JAX_TESTS below) again with KERAS_BACKEND=jax, so a tf.* call in a model fails. Given test paths, it
# runs just those, with TensorFlow. Fails when either run fails.
#
# Installs, when missing: Debian's chromium + chromium-driver (the demo page's browser tests), and this checkout with
# its test extra (`pip install -e ".[test]"`), again whenever setup.cfg changes. Later runs need neither root nor a
# network. Datasets are read from $KERAS_TASKS_DATA (default: ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

export KERAS_TASKS_DATA="${KERAS_TASKS_DATA:-../shared/data}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PYTHON="${PYTHON:-python}"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
  else
    echo "run_tests.sh: the demo page's browser tests need Chromium and its WebDriver, and installing them needs" \
      "root: run 'sudo apt-get install -y chromium chromium-driver' (Debian/Ubuntu) once, then rerun." >&2
    exit 1
  fi
  echo "run_tests.sh: installing chromium and chromium-driver (once)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Installed already when this interpreter imports keras_tasks from this checkout and the stamp matches setup.cfg.
stamp="build/test-install.stamp"
want="$("$PYTHON" -c 'import sys; print(sys.executable)') $(sha1sum setup.cfg | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PYTHON" - <<'PY' 2>/dev/null
import os, jax, keras_tasks, pytest, selenium, tensorflow_text  # noqa: E401
assert os.path.samefile(os.path.dirname(keras_tasks.__file__), ".")
PY
then
  echo "run_tests.sh: installing this checkout with its test dependencies: pip install -e \".[test]\"" >&2
  if ! "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"; then
    echo "run_tests.sh: pip could not install the dependencies (no network to the package index?); install them" \
      "with '$PYTHON -m pip install -e \".[test]\"' and rerun." >&2
    exit 1
  fi
  mkdir -p build && echo "$want" > "$stamp"
fi

JAX_TESTS=(tests/layers tests/tasks/test_model_builders.py)
for arg in "$@"; do
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then
    exec "$PYTHON" -m pytest -q "$@"
  fi
done
status=0
"$PYTHON" -m pytest -q "$@" || status=$?
echo "run_tests.sh: the layers and model builders again under JAX: KERAS_BACKEND=jax pytest ${JAX_TESTS[*]}" >&2
# Exit status 5 (nothing selected, e.g. with -m large) is not a failure of the JAX run.
KERAS_BACKEND=jax "$PYTHON" -m pytest -q "$@" "${JAX_TESTS[@]}" || { rc=$?; [ "$rc" -eq 5 ] || status=$rc; }
exit "$status"
