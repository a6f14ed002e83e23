set terminal png size 900,560 noenhanced
set key outside right
set grid
set output "cdf.png"
set title "An empty call, one at a time: latency CDF"
set logscale x
set xlabel "round trip (µs, log scale)"
set ylabel "fraction of calls"
set yrange [0:1]
set key inside bottom right font ",9"
plot "cdf.dat" index 0 using 1:2 with lines lw 3 lc rgb "#000000" dt 1 title "ember_call, warm (1 runner)", "cdf.dat" index 1 using 1:2 with lines lw 2 lc rgb "#e41a1c" dt 2 title "limit: busy-poll ping-pong", "cdf.dat" index 2 using 1:2 with lines lw 2 lc rgb "#377eb8" dt 2 title "limit: futex ping-pong", "cdf.dat" index 3 using 1:2 with lines lw 2 lc rgb "#4daf4a" dt 2 title "limit: pipe ping-pong", "cdf.dat" index 4 using 1:2 with lines lw 2 lc rgb "#984ea3" dt 1 title "prefork pool over pipes (C)", "cdf.dat" index 5 using 1:2 with lines lw 2 lc rgb "#ff7f00" dt 1 title "BEAM: spawn on a 2nd node + reply", "cdf.dat" index 6 using 1:2 with lines lw 2 lc rgb "#a65628" dt 1 title "Python multiprocessing.Pool.apply", "cdf.dat" index 7 using 1:2 with lines lw 2 lc rgb "#f781bf" dt 1 title "Python ProcessPoolExecutor", "cdf.dat" index 8 using 1:2 with lines lw 2 lc rgb "#999999" dt 1 title "fork per call", "cdf.dat" index 9 using 1:2 with lines lw 2 lc rgb "#17becf" dt 1 title "posix_spawn(/bin/true) per call"
set key outside right font ""
unset logscale
unset yrange
set output "callers.png"
set title "ember: caller processes sharing one runner"
set logscale x 2
set xlabel "caller processes"
set ylabel "calls/s (all callers)"
set y2label "p99 round trip (µs)"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "callers.dat" using 1:2 with linespoints lw 2 title "throughput (calls/s)", "callers.dat" using 1:3 axes x1y2 with linespoints lw 2 title "p99 (µs)"
unset logscale
unset y2label
unset y2tics
set ytics mirror
unset yrange
unset y2range
set output "payload.png"
set multiplot layout 1,2 title "ember: echo of a payload (argument and result)"
set key inside top left
set logscale xy
set xlabel "payload (bytes, log scale)"
set title "latency"
set ylabel "round trip p50 (µs)"
plot "payload.dat" using 1:2 with linespoints lw 2 title "ember", "payload.dat" using 1:4 with linespoints lw 2 title "memcpy both ways"
set title "bandwidth"
set ylabel "GB/s (both ways)"
plot "payload.dat" using 1:3 with linespoints lw 2 title "ember", "payload.dat" using 1:5 with linespoints lw 2 title "memcpy both ways"
unset multiplot
