/** The kiln command line, demos and benchmarks. */
package dev.kiln.samples;
