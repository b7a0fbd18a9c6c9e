// The one identity the function app runs as. Every data-plane grant (storage, telemetry, Key Vault) is made to
// this identity by the module that owns the resource, so each grant sits next to what it protects.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource ID, for the site identity block and the deployment-storage authentication.')
output id string = identity.id

@description('Client (application) ID: AzureWebJobsStorage__clientId, AZURE_CLIENT_ID and the App Insights authentication string use it.')
output clientId string = identity.properties.clientId

@description('Object ID of the service principal, the subject of every role assignment.')
output principalId string = identity.properties.principalId

@description('Name of the identity.')
output name string = identity.name
