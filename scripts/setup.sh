# scripts/setup.sh -- sourced by scripts/run and scripts/test: installs the
# Debian packages usagi needs (apt-get as root, sudo otherwise, or prints
# the list), then configures and builds with CMake (incrementally).
# Nothing is downloaded from anywhere but the Debian archive.

USAGI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USAGI_BUILD=${USAGI_BUILD:-$USAGI_ROOT/build}

# Build tools, Lua 5.4, OpenBLAS, HDF5, cmocka and busted; h5py and h5dump
# for the tests that check usagi's HDF5 files from the outside; and
# Fashion-MNIST, a data set Debian packages (/usr/share/datasets); libedit for
# the REPL's line editing (its tests drive a pseudo-terminal from python3);
# OpenMPI for data-parallel runs and sweeps over ranks (mpirun); gensim and
# unzip for word2vec's interop tests and evaluation sets; libcurl for
# `usagi data get`; libzmq for `usagi kernel` and Debian's Jupyter client,
# nbconvert and nbclient for the kernel's tests (tests/cli/kernel*).
USAGI_PACKAGES="gcc make cmake pkg-config lua5.4 liblua5.4-dev libopenblas-dev
  libhdf5-dev zlib1g-dev libcmocka-dev lua-busted python3-h5py hdf5-tools
  dataset-fashion-mnist libedit-dev libopenmpi-dev openmpi-bin python3-gensim unzip
  libcurl4-openssl-dev libzmq3-dev python3-jupyter-client jupyter-nbconvert
  python3-nbclient python3-nbformat"

usagi_missing_packages() {
  local missing="" p
  for p in $USAGI_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  echo "$missing"
}

usagi_install() {
  local missing
  missing=$(usagi_missing_packages)
  [ -z "$missing" ] && return 0
  echo "usagi: installing Debian packages:$missing"
  local apt="apt-get"
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      apt="sudo apt-get"
    else
      echo "usagi: cannot install packages (not root, no sudo). Please run:" >&2
      echo "  sudo apt-get install$missing" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $apt update -qq && $apt install -y -qq --no-install-recommends $missing || {
    echo "usagi: apt-get failed; the packages needed are:$missing" >&2
    exit 1
  }
}

usagi_build() {
  if [ ! -f "$USAGI_BUILD/CMakeCache.txt" ]; then
    cmake -S "$USAGI_ROOT" -B "$USAGI_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
  fi
  cmake --build "$USAGI_BUILD" -j"$(nproc)" -- --no-print-directory >/dev/null || {
    # build again to show the errors in full
    cmake --build "$USAGI_BUILD" -j1
    exit 1
  }
}

usagi_install
usagi_build
