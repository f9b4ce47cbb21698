# SPDX-License-Identifier: MIT OR Apache-2.0
# Plots zp_sim --data PREFIX output (docs/clockpro.md):
#   gnuplot -e "prefix='/tmp/zp'; out='docs/img/clockpro.png'" tools/sim/clockpro.gp
# Left: misses relative to LIFO per trace and budget (below 1: fewer
# misses than the pool's LIFO). Right: idle MiB after the burst.
set terminal pngcairo size 1400,560 font ",10"
set output out
set multiplot layout 1,2
set title "misses / LIFO misses (lines: CLOCK-Pro, dashed: size-blind Belady)"
set logscale xy 2
set xlabel "budget (fraction of peak idle bytes)"
set ylabel "misses relative to LIFO"
set xrange [0.05:0.6]
set yrange [0.02:2]
set key outside bottom center horizontal
set grid
names = "one-size mixed zipf phase scan bursty burst"
f = prefix.'-misses.dat'
plot for [i=0:6] f index i using 2:($3 > 0 ? $4/$3 : 1) with linespoints lw 2 lc i+1 title word(names, i+1), \
     for [i=0:6] f index i using 2:($3 > 0 ? $5/$3 : 1) with lines dt 2 lc i+1 notitle, \
     1 with lines lc rgb "black" lw 1 notitle
unset logscale
set title "burst trace: idle MiB after the burst (budget = peak idle)"
set xlabel "operations after the burst"
set ylabel "idle MiB"
set xrange [*:*]
set yrange [0:*]
set key top right
d = prefix.'-decay.dat'
plot d using 1:6 with lines lw 2 title "LIFO", d using 1:7 with lines lw 2 title "CLOCK-Pro", \
     d using 1:4 with lines dt 2 title "LIFO (1/2)", d using 1:5 with lines dt 2 title "CLOCK-Pro (1/2)"
unset multiplot
