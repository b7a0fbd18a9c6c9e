using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Reports;

/// <summary>
/// The html report as a browser draws it: headless Chromium (Debian's <c>chromium</c>, which infra/test.sh installs)
/// loads the downloaded page with a probe script appended, which measures every chart's marks; each chart must have
/// marks and every mark a bounding box with an area (a line's, a length).
/// </summary>
public sealed partial class HtmlReportChromiumTests(Azurite azurite) : SignedUpTenantTests(azurite)
{
    protected override bool SignsInAdmin => true;

    protected override bool UsesFakeClock => false;

    protected override IDictionary<string, string?>? Settings => ReportApi.RunsReports();

    private const string Probe = """
        <script>
        const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
          const box = svg.getBoundingClientRect();
          const marks = [...svg.querySelectorAll('.mark')].map(m => {
            const b = m.getBBox();
            return { tag: m.tagName, width: b.width, height: b.height };
          });
          return { name: svg.dataset.name, kind: svg.dataset.kind, width: box.width, height: box.height, marks };
        });
        const out = document.createElement('pre');
        out.id = 'chart-probe';
        out.textContent = JSON.stringify(charts);
        document.body.appendChild(out);
        </script>
        """;

    [Fact]
    public async Task Every_chart_of_the_html_report_is_drawn_in_chromium()
    {
        var chromium = FindChromium() ?? throw new InvalidOperationException(
            "chromium is not installed: infra/test.sh installs it (apt-get install chromium); without it the html report cannot be checked in a browser.");
        await Admin.RunExportsAsync(2);
        var job = await Admin.ReportAsync(new { type = "jobs-summary", format = "html", from = DateTimeOffset.UtcNow.AddDays(-13).ToString("O") });
        var (html, _) = await Admin.DownloadReportAsync(job.GetProperty("id").GetString()!);

        var folder = Directory.CreateTempSubdirectory("report-html-");
        try
        {
            var page = Path.Combine(folder.FullName, "report.html");
            await File.WriteAllTextAsync(page, Encoding.UTF8.GetString(html).Replace("</body>", Probe + "</body>", StringComparison.Ordinal), Ct);
            var dom = await DumpDomAsync(chromium, page, folder.FullName);

            var probe = ProbeOutput().Match(dom);
            Assert.True(probe.Success, "the probe found nothing: " + dom[..Math.Min(dom.Length, 500)]);
            var charts = JsonDocument.Parse(WebUtility.HtmlDecode(probe.Groups[1].Value)).RootElement.EnumerateArray().ToList();
            Assert.Equal(["jobs-per-day", "jobs-total-per-day", "jobs-by-type", "jobs-by-status"], charts.Select(c => c.GetProperty("name").GetString()));
            foreach (var chart in charts)
            {
                var name = chart.GetProperty("name").GetString();
                Assert.True(chart.GetProperty("width").GetDouble() > 100 && chart.GetProperty("height").GetDouble() > 50, $"{name} has no size: {chart}");
                var marks = chart.GetProperty("marks").EnumerateArray().ToList();
                Assert.True(marks.Count > 0, $"{name} has no marks");
                foreach (var mark in marks)
                {
                    var drawn = mark.GetProperty("tag").GetString() == "polyline"
                        ? mark.GetProperty("width").GetDouble() > 0
                        : mark.GetProperty("width").GetDouble() > 0 && mark.GetProperty("height").GetDouble() > 0;
                    Assert.True(drawn, $"a mark of {name} is not drawn: {mark}");
                }
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static readonly string[] ChromiumNames = ["chromium", "chromium-browser"];

    private static string? FindChromium() =>
        ChromiumNames
            .SelectMany(name => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, name)))
            .FirstOrDefault(File.Exists);

    /// <summary>Runs chromium once (no sandbox: tests may run as root), with a deadline, and returns the DOM after the probe ran.</summary>
    private static async Task<string> DumpDomAsync(string chromium, string page, string profile)
    {
        var start = new ProcessStartInfo(chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
            $"--user-data-dir={Path.Combine(profile, "profile")}", "--virtual-time-budget=5000", "--dump-dom", new Uri(page).AbsoluteUri,
        })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        var errors = process.StandardError.ReadToEndAsync(Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish within 90 s: " + await errors);
        }

        var dom = await output;
        Assert.True(process.ExitCode == 0 && dom.Length > 0, $"chromium exited {process.ExitCode}: {await errors}");
        return dom;
    }

    [GeneratedRegex("<pre id=\"chart-probe\">(.*?)</pre>", RegexOptions.Singleline)]
    private static partial Regex ProbeOutput();
}
