#!/bin/sh
# make-demo-video.sh OUTDIR writes the demo site's video files into OUTDIR
# (web/demo/video, which git ignores): a progressive MP4 and an HLS rendition
# of a generated test pattern, drawn by ffmpeg's lavfi sources. Nothing is
# downloaded. The output is byte-identical from one run to the next on the
# same ffmpeg (single-threaded x264, bitexact muxers, no metadata), so a
# rebuild does not change the site's root CID.
#
#   OUTDIR/verity-demo.mp4        H.264 Main 640x360, 25 fps, 24 s, ~1.4 Mbit/s,
#                                 moov first (+faststart), a keyframe every second
#   OUTDIR/hls/index.m3u8         HLS VOD playlist, fMP4 segments of 2 s
#   OUTDIR/hls/init.mp4, seg*.m4s H.264 Main 480x270, ~600 kbit/s
set -eu

out=${1:?usage: make-demo-video.sh OUTDIR}
command -v ffmpeg >/dev/null 2>&1 || { echo "make-demo-video.sh: ffmpeg not found (make deps installs it)" >&2; exit 1; }

duration=24
# The test pattern (moving gradient, colour bars, a sweeping clock hand) with
# the time code and frame number drawn in, so a player's position can be read
# off the picture.
pattern() {
	echo "testsrc2=size=$1:rate=25:duration=$duration,drawtext=font=DejaVu Sans Mono:fontsize=$2:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6:x=w-tw-12:y=12:text='%{pts\\:hms}  frame %{frame_num}'"
}
# x264 options shared by both encodes: one thread (multi-threaded x264 rate
# control is not reproducible), fixed GOP of 25 frames without scene cuts.
x264="-c:v libx264 -threads 1 -preset medium -profile:v main -pix_fmt yuv420p -g 25 -keyint_min 25 -sc_threshold 0"
exact="-map_metadata -1 -flags +bitexact -fflags +bitexact"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/hls"

ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$(pattern 640x360 28)" \
	$x264 -b:v 1400k -maxrate 1800k -bufsize 2800k $exact -movflags +faststart \
	"$tmp/verity-demo.mp4"

ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$(pattern 480x270 20)" \
	$x264 -b:v 600k -maxrate 800k -bufsize 1200k $exact \
	-f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type fmp4 \
	-hls_fmp4_init_filename init.mp4 -hls_segment_filename "$tmp/hls/seg%03d.m4s" \
	"$tmp/hls/index.m3u8"

mkdir -p "$out"
rm -rf "$out/hls"
mv "$tmp/hls" "$out/hls"
mv "$tmp/verity-demo.mp4" "$out/verity-demo.mp4"
