# build-step (google-cloud-buildpacks): pack with the Google Cloud builder.
buildpack_build
