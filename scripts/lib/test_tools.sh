# Sourced by scripts/test.sh: what the audit tests need besides Rust.
#
#   ensure_test_tools   a Python virtual environment in target/test-venv
#                       (reused by later runs) with the OCSF validator's
#                       packages and Playwright, pinned, from PyPI; Debian's
#                       chromium for the browser test (Playwright drives it and
#                       downloads no browser of its own). Installs python3-venv
#                       and chromium with apt when they are missing (as root).
#                       Exports IAM_TEST_PYTHON and IAM_TEST_CHROMIUM.

TEST_PYTHON_PACKAGES=(ocsf-json-schema==1.2.0 jsonschema==4.26.0 playwright==1.65.2 schemathesis==4.32.5)
PYVCLOUD_PACKAGE=pyvcloud==18.2.2

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$* is missing; install it with: sudo apt-get install -y $*" >&2
        return 1
    fi
    echo "==> installing $* from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
}

ensure_test_tools() {
    local venv=target/test-venv
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    command -v chromium >/dev/null || apt_install chromium
    if ! "$venv/bin/python" -c 'import ocsf_json_schema, jsonschema, playwright, schemathesis' 2>/dev/null; then
        echo "==> installing the test tools from PyPI (${TEST_PYTHON_PACKAGES[*]})"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${TEST_PYTHON_PACKAGES[@]}"
    fi
    # pyvcloud 18, VMware's vCloud Air client, is Python 2 code (print
    # statements, StringIO), and Debian has no Python 2: its own code is
    # converted once with lib2to3 into a folder the end-to-end test imports.
    local pyvcloud="$venv/pyvcloud-py3"
    if [ ! -f "$pyvcloud/pyvcloud/vcloudair.py" ]; then
        echo "==> installing pyvcloud 18 from PyPI and converting it to Python 3 (about a minute)"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$PYVCLOUD_PACKAGE"
        rm -rf "$pyvcloud.tmp" && mkdir -p "$pyvcloud.tmp"
        cp -r "$("$venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("pyvcloud").submodule_search_locations[0])')" "$pyvcloud.tmp/"
        "$venv/bin/python" -W ignore -m lib2to3 --write --nobackups --processes 2 "$pyvcloud.tmp/pyvcloud" >/dev/null 2>&1
        mv "$pyvcloud.tmp" "$pyvcloud"
    fi
    export IAM_TEST_PYVCLOUD="$PWD/$pyvcloud"
    export IAM_TEST_PYTHON="$PWD/$venv/bin/python"
    export IAM_TEST_SCHEMATHESIS="$PWD/$venv/bin/schemathesis"
    IAM_TEST_CHROMIUM="$(command -v chromium)"
    export IAM_TEST_CHROMIUM
}
