# build-step (docker): build the repository's Dockerfile and save the image to IMAGE_TAR.
# Env: WORKSPACE, CONTAINERS_STORAGE_CONF, IMAGE_NAME, IMAGE_TAG, GIT_REVISION,
# DOCKER_CONTEXT, DOCKERFILE_PATH (both relative to the repository root; one leading '/' is
# ignored, as in /service-a/Dockerfile).
require IMAGE_NAME IMAGE_TAG DOCKERFILE_PATH
check_revision
DOCKER_CONTEXT=${DOCKER_CONTEXT:-}
context_rel=${DOCKER_CONTEXT#/}
dockerfile_rel=${DOCKERFILE_PATH#/}
check_rel_path docker-context "$context_rel"
check_rel_path dockerfile-path "$dockerfile_rel"
[ -n "$dockerfile_rel" ] || die "dockerfile-path names no file: $DOCKERFILE_PATH"

dockerfile="$SOURCE_DIR/$dockerfile_rel"
context="$SOURCE_DIR${context_rel:+/$context_rel}"
check_inside dockerfile-path "$dockerfile" "$SOURCE_DIR"
check_inside docker-context "$context" "$SOURCE_DIR"
image="$IMAGE_NAME:$IMAGE_TAG-$GIT_REVISION"

write_storage_conf
log "Building $image"
podman build -t "$image" -f "$dockerfile" "$context"
rm -f "$IMAGE_TAR"
podman save -o "$IMAGE_TAR" "$image"
