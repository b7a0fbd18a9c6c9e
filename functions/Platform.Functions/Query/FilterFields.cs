namespace Platform.Functions.Query;

/// <summary>Reading a parsed filter's shape, for a route that narrows what it scans before it evaluates.</summary>
public static class FilterFields
{
    /// <summary>Whether the filter names any of <paramref name="fields"/> anywhere.</summary>
    public static bool Mentions(FilterExpression? filter, params string[] fields) => filter switch
    {
        null => false,
        FilterExpression.And and => Mentions(and.Left, fields) || Mentions(and.Right, fields),
        FilterExpression.Or or => Mentions(or.Left, fields) || Mentions(or.Right, fields),
        FilterExpression.Not not => Mentions(not.Operand, fields),
        FilterExpression.Comparison comparison => fields.Contains(comparison.Field),
        FilterExpression.In @in => fields.Contains(@in.Field),
        FilterExpression.FunctionCall call => fields.Contains(call.Field),
        FilterExpression.Has has => fields.Contains(has.Field),
        _ => false,
    };

    /// <summary>
    /// The range a timestamp field must lie in for the filter to match, from the comparisons joined to the rest by
    /// <c>and</c> at the top level (null ends: unbounded). Anything under <c>or</c> or <c>not</c> is left to evaluation.
    /// </summary>
    public static (DateTimeOffset? From, DateTimeOffset? To) TimeRange(FilterExpression? filter, string field)
    {
        DateTimeOffset? from = null, to = null;
        Visit(filter);
        return (from, to);

        void Visit(FilterExpression? node)
        {
            switch (node)
            {
                case FilterExpression.And and:
                    Visit(and.Left);
                    Visit(and.Right);
                    break;
                case FilterExpression.Comparison { Value: DateTimeOffset at } comparison when comparison.Field == field:
                    if (comparison.Operator is ComparisonOperator.Ge or ComparisonOperator.Gt or ComparisonOperator.Eq && (from is null || at > from))
                    {
                        from = at;
                    }

                    if (comparison.Operator is ComparisonOperator.Le or ComparisonOperator.Lt or ComparisonOperator.Eq && (to is null || at < to))
                    {
                        to = at;
                    }

                    break;
            }
        }
    }
}
