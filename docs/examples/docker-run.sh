#!/bin/sh
# volperm as an init container with plain `docker run` (or `podman run`): fix
# the owner of the app-data volume with only CHOWN and FOWNER, then start the
# app as 1001:1001 only if that succeeded.
#
#   docs/examples/docker-run.sh [APP-COMMAND...]
#
# Environment (the defaults are the names used in docs/containers.md):
#   DOCKER=docker           or podman
#   VOLPERM_IMAGE=volperm   built from the repo's Containerfile
#   APP_IMAGE=my-app        your application, running as 1001:1001
#   APP_DATA=app-data       the volume to fix
#   JOURNAL=volperm-journal a small volume that keeps volperm's journals
#
# tests/e2e runs this very file with docker and podman.
set -eu
DOCKER=${DOCKER:-docker}
VOLPERM_IMAGE=${VOLPERM_IMAGE:-volperm}
APP_IMAGE=${APP_IMAGE:-my-app}
APP_DATA=${APP_DATA:-app-data}
JOURNAL=${JOURNAL:-volperm-journal}

# 1. The init container: uid 0, no capability but CHOWN and FOWNER, no
#    network, read-only root filesystem. The journal goes to its own volume,
#    outside app-data; --recover rolls back a run that was killed half-way
#    before applying again. Exit 0 means the volume is ready; with `set -e`
#    anything else stops here and the app does not start.
$DOCKER run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --cap-add FOWNER \
    --network none --read-only \
    -v "$APP_DATA":/data:nocopy -v "$JOURNAL":/var/lib/volperm \
    "$VOLPERM_IMAGE" apply --recover --owner 1001:1001 /data

# 2. The app, as its own user. `nocopy`: an empty volume must not take the
#    owner and mode of the image's /data (Docker's copy-up), which would undo
#    step 1 on the first start.
exec $DOCKER run --rm --user 1001:1001 -v "$APP_DATA":/data:nocopy \
    "$APP_IMAGE" "$@"
