#!/bin/sh
# tests/mpi/netns.sh -- two hosts on one machine, for the tests and
# benchmarks of runs across machines: two network namespaces joined by a
# veth pair on the private subnet 10.231.77.0/24 (nothing else on this
# machine may use it; the traffic never leaves the two namespaces), and an
# rsh agent that does what `ssh HOST COMMAND` does by entering HOST's
# namespace. OpenMPI then launches across them as across machines: mpirun
# in the first, its daemon started through the agent in the second, the
# ranks talking over TCP on the veth (no shared memory between them).
# Sourced after tests/mpi/mpirun.sh; needs root and `ip netns`.
#
#   hosts_skip_reason            why the hosts cannot be made here, or nothing
#   hosts_up DIR                 make them (DIR: the agent, the hostfile)
#   hosts_down                   remove them and every process in them
#   mpi_hosts ARGS...            mpirun -np 2 across the two hosts
#   PRIVATE=DIR mpi_hosts ...    the same, with DIR on host b a fresh empty
#                                directory of its own (no shared filesystem)
#
# The filesystem is otherwise shared, as the build and the data are; the
# machine's cores are shared too, so timings here show the transport's
# costs, not a network's bandwidth or latency.
NET=10.231.77
HOST_A=$NET.1 HOST_B=$NET.2
NS_A=usagi-a-$$ NS_B=usagi-b-$$

hosts_skip_reason() {
  [ "$(id -u)" = 0 ] || { echo "making network namespaces needs root"; return; }
  command -v ip >/dev/null 2>&1 || { echo "no ip command (apt-get install iproute2)"; return; }
  command -v unshare >/dev/null 2>&1 || { echo "no unshare (util-linux)"; return; }
  ip netns add "usagi-probe-$$" 2>/dev/null || { echo "ip netns add fails here (no CAP_SYS_ADMIN, a container?)"; return; }
  ip netns del "usagi-probe-$$"
  # namespaces an earlier run left when it was killed (SIGKILL skips its
  # trap): theirs, named after a process that is gone
  for ns in $(ip netns list | cut -d' ' -f1 | grep '^usagi-[ab]-[0-9]*$'); do
    kill -0 "${ns##*-}" 2>/dev/null && continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  # the subnet must be unused: here, and in every namespace there is
  # (another run of this test holds it until it ends)
  for ns in "" $(ip netns list | cut -d' ' -f1); do
    if ip ${ns:+-n "$ns"} -o addr 2>/dev/null | grep -q " $NET\." ||
       ip ${ns:+-n "$ns"} route 2>/dev/null | grep -q "^$NET\."; then
      echo "the test's subnet $NET.0/24 is in use${ns:+ in namespace $ns}"; return
    fi
  done
}

hosts_up() {
  hosts_dir=$1
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip link add "ua$$" type veth peer name "ub$$"
  ip link set "ua$$" netns "$NS_A"
  ip link set "ub$$" netns "$NS_B"
  ip -n "$NS_A" addr add "$HOST_A/24" dev "ua$$"
  ip -n "$NS_B" addr add "$HOST_B/24" dev "ub$$"
  for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$NS_A" link set "ua$$" up
  ip -n "$NS_B" link set "ub$$" up
  printf '%s slots=1\n%s slots=1\n' "$HOST_A" "$HOST_B" >"$hosts_dir/hostfile"
  # The agent: `agent HOST COMMAND...` runs COMMAND in HOST's namespace.
  # With $PRIVATE set, host b first mounts an empty tmpfs there, seen by
  # its processes alone (a mount namespace of their own).
  cat >"$hosts_dir/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in
  $HOST_A) exec ip netns exec $NS_A sh -c "\$*" ;;
  $HOST_B)
    if [ -n "\$PRIVATE" ]; then
      exec ip netns exec $NS_B unshare -m --propagation private sh -c \
        'mount -t tmpfs usagi-private "\$0" && exec sh -c "\$1"' "\$PRIVATE" "\$*"
    fi
    exec ip netns exec $NS_B sh -c "\$*" ;;
  *) echo "agent: no host \$host here" >&2; exit 1 ;;
esac
AGENT
  chmod +x "$hosts_dir/agent"
}

hosts_down() {
  for ns in "$NS_A" "$NS_B"; do
    if ip netns list | grep -q "^$ns\( \|\$\)"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# mpirun across the two hosts: TCP over the veth alone, the daemon of host
# b started through the agent; the environment goes with the processes as
# it would not through ssh, so the variables the ranks need are named
# with -x all the same, as on real machines.
mpi_hosts() {
  ip netns exec "$NS_A" mpirun --hostfile "$hosts_dir/hostfile" -np 2 --timeout 240 \
    --mca plm_rsh_agent "$hosts_dir/agent" --mca btl self,tcp \
    --mca btl_tcp_if_include "$NET.0/24" --mca oob_tcp_if_include "$NET.0/24" \
    ${USAGI_DATA:+-x USAGI_DATA} ${USAGI_DIST_TIMEOUT:+-x USAGI_DIST_TIMEOUT} "$@"
}
