using System.Globalization;
using System.Text.Json;
using Platform.Functions.Query;
using Platform.Functions.Reports;
using Platform.Functions.Reports.Types;
using Platform.Functions.Roles;
using Platform.Functions.Storage;

namespace Platform.Functions.Users;

/// <summary>
/// The <c>user-insights</c> report: sign-ups per day, active and inactive users, sign-in frequency, churn, monthly
/// cohort retention and the largest custom-field segments. It reads the tenant's schema (one row) and the users from
/// the instance's <see cref="UserProjections"/> - loaded with one scan of the partition when the instance does not hold
/// them yet - and computes every table and chart in one pass over them, into aggregates whose size depends on the
/// period and the schema, never on the number of users (a segment's distinct values are capped). Sign-in facts come
/// from the user row's <see cref="SignInHistory"/>, which sign-in keeps.
/// <para>
/// "As of" is the end of the period, or now when that is later: active within N days means a sign-in on one of the N
/// UTC days ending that day. Churn: of the users who signed in during the 30 days before the last 30, the share who did
/// not sign in during the last 30 (or were deleted). Retention: of the users who signed up in a calendar month, the share
/// who signed in during each month after it (month 0 is the sign-up month itself).
/// </para>
/// </summary>
public sealed class UserInsightsReport(UserProjections projections, UserSchemas schemas, TimeProvider time) : IReportType
{
    public const string Type = "user-insights";

    /// <summary>Cohorts in the retention table: the calendar months ending with the as-of month.</summary>
    public const int CohortMonths = 12;

    /// <summary>Values listed per custom field, most users first.</summary>
    public const int SegmentsPerField = 10;

    /// <summary>A field with more distinct values than this is an identifier, not a segment: it is left out (and its counts let go).</summary>
    public const int MaxDistinctValues = 1000;

    private static readonly (string Label, int Min, int Max)[] FrequencyBuckets =
        [("0 days", 0, 0), ("1 day", 1, 1), ("2-3 days", 2, 3), ("4-7 days", 4, 7), ("8-14 days", 8, 14), ("15-30 days", 15, 30)];

    private static readonly (string Label, int MinDays, int MaxDays)[] InactiveBuckets =
        [("30-89 days ago", 30, 89), ("90-179 days ago", 90, 179), ("180-364 days ago", 180, 364), ("365 days ago or more", 365, int.MaxValue)];

    public string Permission => Permissions.UsersRead;

    /// <summary>
    /// Without the tenant the custom fields' types are unknown, so a <c>fields.x</c> may be of any type here; the tenant's
    /// schema checks it in <see cref="CheckFilterAsync"/> and when the report is built.
    /// </summary>
    public string? CheckFilter(string? filter) =>
        string.IsNullOrWhiteSpace(filter) ? null : ReportFilters.CheckWithAnyCustomFieldTypes(filter, UsersEndpoints.UserFields);

    public async Task<string?> CheckFilterAsync(TenantId tenant, string? filter, CancellationToken cancellationToken)
    {
        try
        {
            FilterParser.ParseOptional(filter, UsersEndpoints.FilterSchemaFor(await schemas.GetAsync(tenant, cancellationToken)));
            return null;
        }
        catch (FilterException ex)
        {
            return ex.Message;
        }
    }

    /// <exception cref="FilterException">The filter does not hold against the tenant's schema (changed since it was checked).</exception>
    public async Task<ReportDocument> BuildAsync(ReportRequest request, CancellationToken cancellationToken)
    {
        var users = projections.RowsAsync(request.Tenant, cancellationToken);
        var schema = await schemas.GetAsync(request.Tenant, cancellationToken);
        var where = FilterParser.ParseOptional(request.Filter, UsersEndpoints.FilterSchemaFor(schema));
        var now = time.GetUtcNow();
        var asOf = request.To < now ? request.To : now;
        var tally = new Tally(request, asOf, schema);
        foreach (var user in await users)
        {
            if (where is null || where.Evaluate(user.ValueOf))
            {
                tally.Add(user);
            }
        }

        return tally.ToDocument(now);
    }

    /// <summary>Everything the report shows, counted in one pass.</summary>
    private sealed class Tally
    {
        private readonly ReportRequest _request;
        private readonly DateTimeOffset _asOf;
        private readonly long _asOfDay;
        private readonly int _asOfMonth;
        private readonly PeriodBuckets _buckets;
        private readonly long[] _signupsPerDay;
        private readonly long[] _cohortUsers = new long[CohortMonths];
        private readonly long[,] _retained = new long[CohortMonths, CohortMonths];
        private readonly long[] _frequency = new long[FrequencyBuckets.Length];
        private readonly long[] _inactiveSince = new long[InactiveBuckets.Length];
        private readonly List<Segmentation> _segments;
        private readonly Dictionary<string, long> _byStatus = new(StringComparer.Ordinal);
        private long _users;
        private long _active7;
        private long _active30;
        private long _never;
        private long _signedInSince;
        private long _previouslyActive;
        private long _churned;
        private long _signups;
        private long _signIns;

        public Tally(ReportRequest request, DateTimeOffset asOf, SchemaDocument schema)
        {
            _request = request;
            _asOf = asOf;
            _asOfDay = SignInHistory.DayNumber(asOf);
            _asOfMonth = SignInHistory.MonthNumber(asOf);
            _buckets = new PeriodBuckets(request.From, request.To);
            _signupsPerDay = new long[_buckets.Count];
            _segments = [.. schema.Fields.Where(f => f.Type is "string" or "enum" or "boolean").Select(f => new Segmentation(f.Name))];
        }

        public void Add(UserListItem user)
        {
            var view = user.View;
            var signIns = user.SignIns;
            var deleted = view.Status == UserStatus.Deleted;
            _byStatus[view.Status] = _byStatus.GetValueOrDefault(view.Status) + 1;

            if (view.CreatedAt >= _request.From && view.CreatedAt < _request.To)
            {
                _signups++;
                _signupsPerDay[_buckets.IndexOf(view.CreatedAt)]++;
            }

            var cohort = SignInHistory.MonthNumber(view.CreatedAt) - (_asOfMonth - CohortMonths + 1);
            if (cohort is >= 0 and < CohortMonths)
            {
                _cohortUsers[cohort]++;
                var signUpMonth = SignInHistory.MonthNumber(view.CreatedAt);
                for (var k = 0; signUpMonth + k <= _asOfMonth; k++)
                {
                    if (signIns.SignedInDuring(signUpMonth + k))
                    {
                        _retained[cohort, k]++;
                    }
                }
            }

            var lastThirty = signIns.SignInDaysBetween(_asOfDay - 29, _asOfDay);
            if (signIns.SignedInBetween(_asOfDay - 59, _asOfDay - 30))
            {
                _previouslyActive++;
                if (deleted || lastThirty == 0)
                {
                    _churned++;
                }
            }

            if (deleted)
            {
                return;
            }

            _users++;
            _signIns += signIns.Count;
            var active30 = lastThirty > 0;
            _active7 += signIns.SignedInBetween(_asOfDay - 6, _asOfDay) ? 1 : 0;
            _active30 += active30 ? 1 : 0;
            _frequency[Array.FindIndex(FrequencyBuckets, b => lastThirty >= b.Min && lastThirty <= b.Max)]++;
            if (!active30)
            {
                if (signIns.LastLoginAt is not { } last)
                {
                    _never++;
                }
                else if (last > _asOf)
                {
                    // Signed in after the period: when they did before it is older than the bits reach.
                    _signedInSince++;
                }
                else
                {
                    var daysAgo = _asOfDay - SignInHistory.DayNumber(last);
                    _inactiveSince[Array.FindIndex(InactiveBuckets, b => daysAgo >= b.MinDays && daysAgo <= b.MaxDays)]++;
                }
            }

            if (_segments.Count > 0 && view.Fields.ValueKind == JsonValueKind.Object)
            {
                foreach (var segmentation in _segments)
                {
                    if (view.Fields.TryGetProperty(segmentation.Field, out var value) && SegmentValue(value) is { } text)
                    {
                        segmentation.Add(text, active30);
                    }
                }
            }
        }

        private static string? SegmentValue(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => null,
        };

        public ReportDocument ToDocument(DateTimeOffset generatedAt)
        {
            var inactive = _users - _active30;
            var churnRate = _previouslyActive == 0 ? 0 : Math.Round((double)_churned / _previouslyActive, 4);
            var asOfText = _asOf.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            var sections = new List<ReportSection>
            {
                Signups(),
                new("Activity",
                    $"As of {asOfText} (UTC days). Active: signed in on at least one of the last 7 or 30 days. Inactive: no sign-in in the last 30 days, by when the last one was.",
                    [
                        new ReportTable("active-users", "Active and inactive users",
                            [new("measure", ReportValueKind.Text), new("users", ReportValueKind.Count), new("share", ReportValueKind.Percent)],
                            [
                                Row("users", _users), Row("active in the last 7 days", _active7), Row("active in the last 30 days", _active30),
                                Row("inactive (no sign-in in 30 days)", inactive), Row("never signed in", _never),
                            ]),
                        new ReportTable("inactive-users", "Inactive users by their last sign-in",
                            [new("lastSignIn", ReportValueKind.Text), new("users", ReportValueKind.Count)],
                            InactiveRows()),
                        new ReportTable("users-by-status", "Users by status",
                            [new("status", ReportValueKind.Text), new("users", ReportValueKind.Count)],
                            [.. _byStatus.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => (IReadOnlyList<object?>)[s.Key, s.Value])]),
                    ],
                    [
                        new ReportChart("active-vs-inactive", "Active and inactive users (30 days)", ReportChartKind.Pie,
                            ["active in the last 7 days", "active 8-30 days ago", "inactive"],
                            [new ReportSeries("users", [_active7, _active30 - _active7, inactive])], "users"),
                    ]),
                new("Sign-in frequency",
                    "On how many of the last 30 UTC days each user signed in.",
                    [
                        new ReportTable("sign-in-frequency", "Users by sign-in days in the last 30 days",
                            [new("signInDays", ReportValueKind.Text), new("users", ReportValueKind.Count), new("share", ReportValueKind.Percent)],
                            [.. FrequencyBuckets.Select((b, i) => Row(b.Label, _frequency[i]))]),
                    ],
                    [
                        new ReportChart("sign-in-frequency", "Users by sign-in days in the last 30 days", ReportChartKind.Bar,
                            [.. FrequencyBuckets.Select(b => b.Label)], [new ReportSeries("users", [.. _frequency.Select(f => (double)f)])], "users"),
                    ]),
                new("Churn",
                    "Churn rate: of the users who signed in during the 30 days before the last 30 (days 31-60 before the as-of day), the share who did not sign in during the last 30 days or were deleted.",
                    [
                        new ReportTable("churn", "Churn over the last 30 days",
                            [new("measure", ReportValueKind.Text), new("value", ReportValueKind.Number)],
                            [
                                ["active in days 31-60 before", (double)_previouslyActive],
                                ["of them, no sign-in in the last 30 days", (double)_churned],
                                ["churn rate", churnRate],
                            ]),
                    ],
                    []),
                Cohorts(),
                Segments(),
            };

            var from = _request.From;
            return new ReportDocument(Type, "User insights", from, _request.To, generatedAt, sections)
            {
                Figures = new Dictionary<string, double>(StringComparer.Ordinal)
                {
                    ["userCount"] = _users,
                    ["active7"] = _active7,
                    ["active30"] = _active30,
                    ["inactive"] = inactive,
                    ["neverSignedIn"] = _never,
                    ["churnRate"] = churnRate,
                    ["churned"] = _churned,
                    ["signupsInPeriod"] = _signups,
                    ["signIns"] = _signIns,
                },
            };
        }

        private List<IReadOnlyList<object?>> InactiveRows()
        {
            var rows = new List<IReadOnlyList<object?>> { new object?[] { "never", _never } };
            rows.AddRange(InactiveBuckets.Select((b, i) => (IReadOnlyList<object?>)[b.Label, _inactiveSince[i]]));
            if (_signedInSince > 0)
            {
                rows.Add(["after the period", _signedInSince]);
            }

            return rows;
        }

        private IReadOnlyList<object?> Row(string label, long users) =>
            [label, users, _users == 0 ? 0.0 : Math.Round((double)users / _users, 4)];

        private ReportSection Signups()
        {
            var unit = _buckets.Unit;
            return new ReportSection("Sign-ups", $"{_signups} users signed up in the period (users deleted since included), per UTC {unit}.",
                [
                    new ReportTable($"signups-per-{unit}", $"Sign-ups per {unit}",
                        [new("date", ReportValueKind.Date), new("signups", ReportValueKind.Count)],
                        [.. _signupsPerDay.Select((count, i) => (IReadOnlyList<object?>)[_buckets.Start(i), count])]),
                ],
                [
                    new ReportChart($"signups-per-{unit}", $"Sign-ups per {unit}", ReportChartKind.Bar,
                        [.. _signupsPerDay.Select((_, i) => _buckets.Label(i))],
                        [new ReportSeries("sign-ups", [.. _signupsPerDay.Select(s => (double)s)])], "users"),
                ]);
        }

        private ReportSection Cohorts()
        {
            var firstMonth = _asOfMonth - CohortMonths + 1;
            var columns = new List<ReportColumn> { new("cohort", ReportValueKind.Text), new("users", ReportValueKind.Count) };
            columns.AddRange(Enumerable.Range(0, CohortMonths).Select(k => new ReportColumn($"month{k}", ReportValueKind.Percent)));
            var rows = new List<IReadOnlyList<object?>>();
            var average = new double[CohortMonths];
            for (var c = 0; c < CohortMonths; c++)
            {
                var row = new List<object?> { MonthText(firstMonth + c), _cohortUsers[c] };
                for (var k = 0; k < CohortMonths; k++)
                {
                    // A month not reached yet has no figure; an empty cohort retains no one.
                    row.Add(firstMonth + c + k > _asOfMonth ? null : _cohortUsers[c] == 0 ? 0.0 : Math.Round((double)_retained[c, k] / _cohortUsers[c], 4));
                }

                rows.Add(row);
            }

            for (var k = 0; k < CohortMonths; k++)
            {
                long reached = 0, retained = 0;
                for (var c = 0; c + k < CohortMonths; c++)
                {
                    reached += _cohortUsers[c];
                    retained += _retained[c, k];
                }

                average[k] = reached == 0 ? 0 : Math.Round((double)retained / reached, 4);
            }

            return new ReportSection("Cohort retention",
                $"Users by sign-up month (the {CohortMonths} months to the as-of month); month N: the share who signed in during the Nth calendar month after signing up (month 0: the sign-up month).",
                [new ReportTable("cohort-retention", "Monthly cohort retention", columns, rows)],
                [
                    new ReportChart("cohort-retention", "Retention by months since sign-up (all cohorts that reached the month)", ReportChartKind.Line,
                        [.. Enumerable.Range(0, CohortMonths).Select(k => $"month {k}")], [new ReportSeries("retained", average)], "share"),
                ]);
        }

        private ReportSection Segments()
        {
            var rows = new List<IReadOnlyList<object?>>();
            var leaders = new Leaders<(string Field, string Value, long Users)>(SegmentsPerField,
                (a, b) => b.Users.CompareTo(a.Users) is var byUsers and not 0 ? byUsers : string.CompareOrdinal(a.Field + "=" + a.Value, b.Field + "=" + b.Value));
            var skipped = new List<string>();
            foreach (var segmentation in _segments)
            {
                if (segmentation.Values is not { } values)
                {
                    skipped.Add(segmentation.Field);
                    continue;
                }

                foreach (var (value, counts) in values.OrderByDescending(v => v.Value.Users).ThenBy(v => v.Key, StringComparer.Ordinal).Take(SegmentsPerField))
                {
                    rows.Add([segmentation.Field, value, counts.Users, _users == 0 ? 0.0 : Math.Round((double)counts.Users / _users, 4),
                        counts.Active30, counts.Users == 0 ? 0.0 : Math.Round((double)counts.Active30 / counts.Users, 4)]);
                    leaders.Offer((segmentation.Field, value, counts.Users));
                }
            }

            var top = leaders.InOrder();
            var text = _segments.Count == 0
                ? "The tenant's user schema has no string, enum or boolean custom field to segment by."
                : $"The {SegmentsPerField} largest values of each string, enum and boolean custom field."
                    + (skipped.Count > 0 ? $" Left out, with more than {MaxDistinctValues} distinct values: {string.Join(", ", skipped)}." : "");
            return new ReportSection("Custom-field segments", text,
                [
                    new ReportTable("segments", "Top custom-field segments",
                        [
                            new("field", ReportValueKind.Text), new("value", ReportValueKind.Text), new("users", ReportValueKind.Count),
                            new("share", ReportValueKind.Percent), new("active30", ReportValueKind.Count), new("activeShare", ReportValueKind.Percent),
                        ],
                        rows),
                ],
                top.Count == 0 ? [] :
                [
                    new ReportChart("segments", "Largest segments", ReportChartKind.Bar, [.. top.Select(t => $"{t.Field}={t.Value}")],
                        [new ReportSeries("users", [.. top.Select(t => (double)t.Users)])], "users"),
                ]);
        }

        private static string MonthText(int month) =>
            string.Create(CultureInfo.InvariantCulture, $"{month / 12:D4}-{(month % 12) + 1:D2}");
    }

    /// <summary>The users per value of one custom field, until it has too many values to be a segment.</summary>
    private sealed class Segmentation(string field)
    {
        public string Field { get; } = field;

        public Dictionary<string, (long Users, long Active30)>? Values { get; private set; } = new(StringComparer.Ordinal);

        public void Add(string value, bool active30)
        {
            if (Values is not { } values)
            {
                return;
            }

            var counts = values.GetValueOrDefault(value);
            if (counts == default && values.Count == MaxDistinctValues)
            {
                Values = null;
                return;
            }

            values[value] = (counts.Users + 1, counts.Active30 + (active30 ? 1 : 0));
        }
    }
}
