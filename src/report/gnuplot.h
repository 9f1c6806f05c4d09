#pragma once
// The gnuplot helpers of plots.cc, shared with compare.cc (internal to the report module): every
// figure is a data file plus a script in <plots>/data/ and one gnuplot run that draws a PNG and
// an SVG, so a reader can re-run or tweak any of them by hand.
#include <filesystem>
#include <string>

#include "continuum/report/plots.h"
#include "continuum/util/expected.h"

namespace continuum::report::gnuplot {

/// The i-th line/bar colour (colour-blind-safe palette first).
const char* color(size_t i);
/// A gnuplot string literal.
std::string gq(const std::string& s);
/// A quoted field of a gnuplot data file.
std::string dq(std::string s);
/// A number for a data file or script; NaN for a missing value.
std::string num(double v);
/// Writes <plots_dir>/data/<name>.gp (PNG then SVG terminal around `body`), runs gnuplot in
/// plots_dir, and checks that both files exist and the PNG is not blank.
Expected<PlotFiles> draw(const std::filesystem::path& plots_dir, const std::string& name,
                         const std::string& body, int w, int h);

}  // namespace continuum::report::gnuplot
