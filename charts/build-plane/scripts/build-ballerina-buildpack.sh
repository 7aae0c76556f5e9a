# build-step (ballerina-buildpack): pack with the Ballerina builder; the buildpack writes its
# generated artifacts into the workspace.
buildpack_build --volume "$WORKSPACE:/app/generated-artifacts:rw"
