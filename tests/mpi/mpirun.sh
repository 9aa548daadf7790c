#!/bin/sh
# tests/mpi/mpirun.sh USAGI CMD ARGS... -- run `mpirun -np 2 CMD ARGS...` on
# this host over loopback only, or exit 77 (ctest's skip) saying why (USAGI,
# the usagi executable, says whether this build has MPI).
# Sourced by the other tests here for mpi_or_skip, mpi_scratch and mpi2;
# run alone it runs its arguments under mpi2.
#
# As root (CI), OpenMPI wants OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM). --oversubscribe
# lets 2 ranks start on a machine with fewer slots; the shared-memory (vader)
# and TCP transports are kept to loopback. mpirun's own output goes to the
# caller's stderr.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
# a container may not allow the single-copy (CMA) mechanism; copies work everywhere
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# no ssh/rsh agent is needed on one host; keep mpirun from looking for one
export OMPI_MCA_plm_rsh_agent=false

mpi_skip_reason() {
  usagi=$1
  command -v mpirun >/dev/null 2>&1 || { echo "mpirun not found (apt-get install openmpi-bin)"; return; }
  [ "$USAGI_SANITIZE" = "ON" ] && { echo "under ASan: LeakSanitizer reports OpenMPI's own process-lifetime allocations"; return; }
  "$usagi" -e 'os.exit(require("usagi.dist").compiled() and 0 or 1)' 2>/dev/null ||
    { echo "this usagi was built without MPI (USAGI_MPI=OFF or no libopenmpi-dev)"; return; }
}

# exit 77 (ctest's skip) with the reason when USAGI cannot run under mpirun here
mpi_or_skip() {
  reason=$(mpi_skip_reason "$1")
  if [ -n "$reason" ]; then echo "SKIP: $reason"; exit 77; fi
}

# $out <- a scratch directory, removed when the test exits
mpi_scratch() {
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
}

# a rank stuck in a collective (another rank failed past it) ends the job
mpi2() { mpirun -np 2 --oversubscribe --timeout 240 "$@"; }

if [ "$(basename "$0")" = mpirun.sh ]; then
  mpi_or_skip "$1"
  shift
  mpi2 "$@"
fi
