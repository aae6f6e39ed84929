# Verity: one image for the gateway and the node (the same binary).
#
#   docker build -t verity .
#   docker run --rm -p 8080:8080 verity gateway --listen 0.0.0.0:8080
#   docker run --rm -p 4001:4001 -p 4433:4433/udp -p 4434:4434/udp verity \
#       node --http 0.0.0.0:4001 --webtransport 0.0.0.0:4433 --webrtc 0.0.0.0:4434 \
#            --public-host 203.0.113.7 --coordinator https://gw.example
#
# docs/operating-a-node.md describes the flags and the volumes.

# Build: the worker's wasm, the demo site's media (ffmpeg, hls.js from npm),
# the console's chart library (uPlot from npm)
# and a static bin/verity that embeds them.
FROM golang:1.26-bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ffmpeg fonts-dejavu-core nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make wasm demo-media console-assets \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/verity ./cmd/verity

# Run: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/verity /usr/local/bin/verity
# Data (node blocks, the gateway's NATS store, keys) lives in /data: mount a
# volume there so it survives the container.
VOLUME ["/data"]
WORKDIR /data
ENV XDG_CACHE_HOME=/data
USER nonroot:nonroot
# gateway HTTP; node HTTP; node WebTransport and WebRTC (UDP).
EXPOSE 8080/tcp 4001/tcp 4433/udp 4434/udp
ENTRYPOINT ["/usr/local/bin/verity"]
CMD ["--help"]
