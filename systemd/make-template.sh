#!/bin/sh
# Print resnetd@.service, the template for several replicas on one machine
# (resnetd@8081, resnetd@8082... behind deploy/nginx.conf), made from
# resnetd.service so that the hardening lives in one file. The instance name is
# the port; per-instance settings go in /etc/default/resnetd@PORT, read after
# /etc/default/resnetd, e.g. RESNETD_WORKERS=1 to share the cores.
#   usage: systemd/make-template.sh [path/to/resnetd.service] > resnetd@.service
set -eu
src=${1:-$(dirname "$0")/resnetd.service}
cat <<'HEAD'
# resnetd@.service: one resnetd replica on 127.0.0.1:PORT, PORT being the
# instance name; generated from resnetd.service (see its comments) by
# systemd/make-template.sh. Per-instance settings: /etc/default/resnetd@PORT.
#   sudo systemctl enable --now resnetd@8081 resnetd@8082
HEAD
# drop the single-service header, name the port, read the instance's settings
# too, and listen on the instance's port (the command line wins over RESNETD_LISTEN)
sed -e '1,/^\[Unit\]$/{/^\[Unit\]$/!d}' \
    -e 's|^Description=.*|&, port %i|' \
    -e 's|^EnvironmentFile=-/etc/default/resnetd$|&\nEnvironmentFile=-/etc/default/resnetd@%i|' \
    -e 's|^ExecStart=.*|& --listen 127.0.0.1:%i|' \
    "$src"
