# Helpers shared by scripts/test.sh and scripts/services/*.sh (sourced, not run).

# Prints a progress line to stderr.
say() { printf '   %s\n' "$*" >&2; }

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds (default 30) for 127.0.0.1:$1; fails naming $3 if it never opens.
wait_for_port() {
    local port=$1 timeout=${2:-30} name=${3:-service} waited=0
    until port_open "$port"; do
        if ((waited >= timeout * 10)); then
            say "$name did not open port $port within ${timeout}s"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# Installs Debian packages that are missing (runs apt-get update once per run).
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    if [[ -z "${APT_UPDATED:-}" ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Where the test services keep their pid files, logs and data (ignored by git).
SERVICE_DIR="${SERVICE_DIR:-$PWD/target/services}"
mkdir -p "$SERVICE_DIR"

# The virtualenv for the Python side of the tests (Flask-Session interop, SecantusDB).
VENV="${VENV:-$PWD/target/venv}"

# Creates the virtualenv and installs tests/python-requirements.txt into it when it changed.
python_env() {
    local requirements=tests/python-requirements.txt stamp="$VENV/.requirements"
    [[ -f $requirements ]] || return 0
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating $VENV"
        python3 -m venv "$VENV" || {
            apt_install python3-venv
            python3 -m venv "$VENV"
        }
    fi
    if ! cmp -s "$requirements" "$stamp"; then
        say "pip install -r $requirements"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --pre -r "$requirements"
        cp "$requirements" "$stamp"
    fi
}

# Installs the Python package (bindings/python) into the virtualenv, without build isolation
# (its build requirements are in tests/python-requirements.txt): setuptools-rust builds the
# library with cargo profile $1 (default release, as `pip install ./bindings/python` does;
# the test command passes dev, which reuses its debug build of the dependencies) into the
# cargo target dir (CARGO_TARGET_DIR, else target/), so a reinstall only rebuilds what
# changed. Skipped when neither the package's sources, the library's nor the profile changed
# since the last install.
python_package() {
    local profile=${1:-release} stamp="$VENV/.sessionstore-package" sources
    sources=$(find bindings/python/pyproject.toml bindings/python/src src build.rs cbindgen.toml \
        Cargo.toml Cargo.lock -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum |
        sha256sum)
    sources="$profile $sources"
    if [[ -f $stamp && $(<"$stamp") == "$sources" ]]; then
        return 0
    fi
    say "pip install ./bindings/python ($profile build of the library)"
    SETUPTOOLS_RUST_CARGO_PROFILE=$profile "$VENV/bin/python" -m pip install -q \
        --disable-pip-version-check --no-build-isolation ./bindings/python
    echo "$sources" >"$stamp"
}
