// Program.cs wires each capability with one line (builder.AddInventory(), app.MapInventory()); this keeps it at one.
global using Platform.Functions.Inventory;
