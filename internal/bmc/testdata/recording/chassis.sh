#!/bin/sh
echo "$(date +%T.%N) $*" >> STATEDIR/chassis.log
d=STATEDIR
mc=$1; shift
op=$1; shift
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
      power) echo "power:$(cat $d/power 2>/dev/null || echo 0)";;
      boot) echo "boot:$(cat $d/boot 2>/dev/null || echo none)";;
    esac
  done;;
set)
  while [ $# -gt 0 ]; do
    case "$1" in
      power) echo "$2" > $d/power;;
      boot) echo "$2" > $d/boot;;
    esac
    shift 2
  done;;
esac
