#!/bin/sh
# Stateful chassis_control program for ipmi_sim (see lan.conf).
#   chassiscontrol.sh <mc> get <parm>...          -> prints "<parm>:<value>" lines
#   chassiscontrol.sh <mc> set <parm> <val> ...   -> prints nothing, exit 0
# parms: power (0|1), reset (1), boot (none|pxe|default|cdrom|bios),
#        shutdown (1), identify (<interval> <force>).
# State lives in files under $CHASSIS_STATE_DIR (default: current directory),
# so a test can also read/inject it directly.  Every call is appended to
# $CHASSIS_STATE_DIR/calls.log.
# Fault injection, also by files in $CHASSIS_STATE_DIR:
#   ignore_shutdown  soft shutdown requests are accepted but do nothing
#                    (an OS that ignores ACPI power button events)
#   hang             every call first sleeps as many seconds as the file
#                    says; ipmi_sim waits for this program, so the BMC stops
#                    answering (a hung BMC with a session open)
dir=${CHASSIS_STATE_DIR:-.}
mc=$1; op=$2
[ -n "$mc" ] && [ -n "$op" ] || { echo "usage: $0 <mc> get|set|check ..."; exit 1; }
shift 2
echo "$mc $op $*" >> "$dir/calls.log"

read_state() { # <name> <default>
    if [ -f "$dir/$1" ]; then cat "$dir/$1"; else echo "$2"; fi
}

write_state() { # <name> <value>: renamed into place, never seen half-written
    printf '%s\n' "$2" > "$dir/.$1.$$" && mv -f "$dir/.$1.$$" "$dir/$1"
}

if [ -f "$dir/hang" ]; then
    sleep "$(cat "$dir/hang")"
fi

case $op in
get)
    for p in "$@"; do
        case $p in
        power) echo "power:$(read_state power 0)" ;;
        boot)  echo "boot:$(read_state boot default)" ;;
        *) echo "invalid parameter: $p"; exit 1 ;;
        esac
    done
    ;;
set)
    while [ $# -gt 0 ]; do
        p=$1; v=$2
        [ -n "$v" ] || { echo "no value for $p"; exit 1; }
        shift 2
        case $p in
        power)
            write_state power "$v" ;;
        reset)
            # a reset pulse: count it, power stays as it is
            write_state resets $(( $(read_state resets 0) + 1 )) ;;
        shutdown)
            # soft-off request: a real OS would shut down; emulate it at once
            [ -f "$dir/ignore_shutdown" ] || write_state power 0 ;;
        boot)
            case $v in
            none|pxe|default|cdrom|bios) write_state boot "$v" ;;
            *) echo "invalid boot value: $v"; exit 1 ;;
            esac ;;
        identify)
            ;; # value is "<interval> <force>" (one quoted word): ignored
        *) echo "invalid parameter: $p"; exit 1 ;;
        esac
    done
    ;;
check)
    exit 1 ;;
*)
    echo "unknown operation: $op"; exit 1 ;;
esac
exit 0
