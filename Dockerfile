# The demo-app image: one static-ish binary for every role (serve db/app, loadgen, agent).
# Build: docker build -t lgtm-demo-app:dev .   (the deployer uses `minikube image build`)
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p demo-app \
 && install -m 0755 target/release/demo-app /usr/local/bin/demo-app

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home demo
COPY --from=build /usr/local/bin/demo-app /usr/local/bin/demo-app
USER 10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/demo-app"]
CMD ["serve", "--role", "db"]
