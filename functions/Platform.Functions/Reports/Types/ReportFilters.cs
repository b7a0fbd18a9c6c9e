using Platform.Functions.Query;

namespace Platform.Functions.Reports.Types;

/// <summary>Checks of a report's <c>filter</c> made before the tenant is known (see <see cref="IReportType.CheckFilter"/>).</summary>
public static class ReportFilters
{
    private static readonly FieldType[] CustomFieldTypes = [FieldType.String, FieldType.Number, FieldType.Boolean, FieldType.Timestamp];

    /// <summary>
    /// Null when <paramref name="filter"/> is well-formed over <paramref name="fields"/> and some typing of the custom
    /// fields it names (<c>fields.x</c>, each one type throughout), else the parser's message. The parser types a field
    /// when it reads its name, and a type mismatch shows in that field's own comparison, before the next field is read:
    /// so on a failure the field read last takes its next type and the filter is parsed again - at most four parses per
    /// custom field named. The message of the parse that got furthest is the one reported.
    /// </summary>
    public static string? CheckWithAnyCustomFieldTypes(string filter, IReadOnlyDictionary<string, FieldType> fields)
    {
        var chosen = new Dictionary<string, int>(StringComparer.Ordinal);
        FilterException? furthest = null;
        while (true)
        {
            string? last = null;
            var schema = new FilterSchema(fields, name =>
            {
                last = name;
                return CustomFieldTypes[chosen.GetValueOrDefault(name)];
            });
            try
            {
                FilterParser.Parse(filter, schema);
                return null;
            }
            catch (FilterException ex)
            {
                if (furthest is null || ex.Position > furthest.Position)
                {
                    furthest = ex;
                }

                if (last is null || chosen.GetValueOrDefault(last) == CustomFieldTypes.Length - 1)
                {
                    return furthest.Message;
                }

                chosen[last] = chosen.GetValueOrDefault(last) + 1;
            }
        }
    }
}
