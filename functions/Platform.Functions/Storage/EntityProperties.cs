using System.Collections.Concurrent;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Platform.Functions.Storage;

/// <summary>
/// An entity's properties as the table service's JSON, by the SDK's rules (its <c>TablesTypeBinder</c> for a model
/// type, its dictionary rules for a <see cref="TableEntity"/>): <c>ETag</c> and <c>Timestamp</c> left out, a model's
/// public properties and fields unless <see cref="IgnoreDataMemberAttribute"/>, named by <see cref="DataMemberAttribute"/>,
/// an <c>@odata.type</c> annotation for 64-bit integers (sent as strings), doubles, GUIDs, times and binary, an enum of
/// a model as its name. Anything else (decimal, float, unsigned, TimeSpan, nested values, a time that is not UTC, an enum
/// in a dictionary) is not written here: <see cref="TryWrite"/> says false and the SDK sends the transaction.
/// </summary>
internal static class EntityProperties
{
    /// <summary>A model type's members; null for a type whose members would write one name twice (the SDK then sends it).</summary>
    private static readonly ConcurrentDictionary<Type, Member[]?> Models = new();

    /// <summary>One readable member of a model type.</summary>
    private sealed record Member(string Name, Func<object, object?> Get, bool IsEnum);

    public static bool TryWrite(Utf8JsonWriter json, ITableEntity entity)
    {
        json.WriteStartObject();
        if (entity is IDictionary<string, object?> properties)
        {
            foreach (var (name, value) in properties)
            {
                if (name is "odata.etag" or "Timestamp")
                {
                    continue;
                }

                // An annotation of its own ("X@odata.type") would be written twice beside the one the writer adds; the
                // SDK's dictionary keeps one. (An enum, which the SDK refuses in a dictionary, is no type written here.)
                if (name.Contains('@', StringComparison.Ordinal) || !TryWriteValue(json, name, value))
                {
                    return false;
                }
            }
        }
        else
        {
            if (MembersOf(entity.GetType()) is not { } members)
            {
                return false;
            }

            // The keys as the entity holds them (pinned to the tenant by TenantPartition), as the SDK writes them: through
            // ITableEntity, after the type's members, so a member of the same name never stands in for them.
            json.WriteString(nameof(ITableEntity.PartitionKey), entity.PartitionKey);
            json.WriteString(nameof(ITableEntity.RowKey), entity.RowKey);
            foreach (var member in members)
            {
                var value = member.Get(entity);
                if (member.IsEnum && value is not null)
                {
                    json.WriteString(member.Name, value.ToString());
                }
                else if (!TryWriteValue(json, member.Name, value))
                {
                    return false;
                }
            }
        }

        json.WriteEndObject();
        return true;
    }

    private static bool TryWriteValue(Utf8JsonWriter json, string name, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNull(name);
                return true;
            case string text:
                json.WriteString(name, text);
                return true;
            case int number:
                json.WriteNumber(name, number);
                return true;
            case bool flag:
                json.WriteBoolean(name, flag);
                return true;
            case long number:
                Span<char> digits = stackalloc char[20];
                number.TryFormat(digits, out var length, provider: CultureInfo.InvariantCulture);
                json.WriteString(name, digits[..length]);
                Annotate(json, name, "Edm.Int64");
                return true;
            case double number when double.IsNaN(number):
                json.WriteString(name, "NaN");
                Annotate(json, name, "Edm.Double");
                return true;
            case double number when double.IsFinite(number):
                json.WriteNumber(name, number);
                Annotate(json, name, "Edm.Double");
                return true;
            case Guid id:
                json.WriteString(name, id);
                Annotate(json, name, "Edm.Guid");
                return true;
            case DateTimeOffset time:
                WriteTime(json, name, time.UtcDateTime);
                return true;
            case DateTime time when time.Kind == DateTimeKind.Utc:
                WriteTime(json, name, time);
                return true;
            case byte[] bytes:
                json.WriteBase64String(name, bytes);
                Annotate(json, name, "Edm.Binary");
                return true;
            case BinaryData data:
                json.WriteBase64String(name, data.ToMemory().Span);
                Annotate(json, name, "Edm.Binary");
                return true;
            default:
                return false;
        }
    }

    private static void WriteTime(Utf8JsonWriter json, string name, DateTime utc)
    {
        Span<char> text = stackalloc char[28];
        utc.TryFormat(text, out var length, "yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);
        json.WriteString(name, text[..length]);
        Annotate(json, name, "Edm.DateTime");
    }

    private static void Annotate(Utf8JsonWriter json, string name, string type)
    {
        const string Suffix = "@odata.type";
        if (name.Length > 256)
        {
            json.WriteString(name + Suffix, type);
            return;
        }

        Span<char> key = stackalloc char[name.Length + Suffix.Length];
        name.CopyTo(key);
        Suffix.CopyTo(key[name.Length..]);
        json.WriteString(key, type);
    }

    private static Member[]? MembersOf(Type type) => Models.GetOrAdd(type, static type =>
    {
        var members = new List<Member>();
        foreach (var member in type.GetMembers(BindingFlags.Instance | BindingFlags.Public))
        {
            if (member.IsDefined(typeof(IgnoreDataMemberAttribute)))
            {
                continue;
            }

            var instance = Expression.Parameter(typeof(object));
            var typed = Expression.Convert(instance, type);
            Type valueType;
            Expression access;
            switch (member)
            {
                case PropertyInfo property when property.GetIndexParameters().Length == 0 && property.GetGetMethod() is not null:
                    valueType = property.PropertyType;
                    access = Expression.Property(typed, property);
                    break;
                case FieldInfo field:
                    valueType = field.FieldType;
                    access = Expression.Field(typed, field);
                    break;
                default:
                    continue;
            }

            var name = member.GetCustomAttribute<DataMemberAttribute>()?.Name ?? member.Name;
            if (name is nameof(ITableEntity.ETag) or nameof(ITableEntity.Timestamp)
                or nameof(ITableEntity.PartitionKey) or nameof(ITableEntity.RowKey))
            {
                continue;
            }

            var read = Expression.Lambda<Func<object, object?>>(Expression.Convert(access, typeof(object)), instance).Compile();
            members.Add(new(name, read, (Nullable.GetUnderlyingType(valueType) ?? valueType).IsEnum));
        }

        // Two members of one name (a DataMember name given twice, a property hidden with `new`): the SDK's dictionary
        // keeps the last, JSON would hold both.
        var names = new HashSet<string>(StringComparer.Ordinal) { nameof(ITableEntity.PartitionKey), nameof(ITableEntity.RowKey) };
        return members.TrueForAll(m => names.Add(m.Name)) ? [.. members] : null;
    });
}
